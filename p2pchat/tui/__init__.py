"""The terminal UI: ``p2pchat`` with no command.

It runs the same node as ``p2pchat daemon`` (and its control socket, so CLI
commands work beside it), consumes ``Node.subscribe()`` events and calls the
node's ``NodeApi``; history is read through the Profile. One job per module:

- launch.py: the entry (data dir, lock, passphrase from file/env), runs the app
- node_host.py: the node + control server + lock, started and stopped together
- app.py: ChatApp: first-run / unlock screens, then the main screen
- create_profile_screen.py, unlock_screen.py: the screens before the node runs
- profile_opened.py: the message those screens send the app with the open profile
- main_screen.py: sidebar + chat pane, the event worker, the actions
- roster.py, conversation_log.py: pure state the events build (sidebar, chats)
- sidebar.py, chat_pane.py: the widgets that draw that state
- invite_screen.py, safety_screen.py, request_screen.py, confirm_screen.py,
  key_warning_screen.py, search_screen.py, help_screen.py: one screen each
- history.py: what the TUI reads from the Profile (messages, search)
- notifier.py, settings.py: bell / title / desktop notifications, tui.json
- link_screen.py, qr_screen.py: the invite link alone, its QR code alone (Start chat)
- event_feed.py: the node's events from before it starts, for the main screen
- qr_text.py, text_format.py: QR codes sized to fit, and safe text for the terminal
"""
