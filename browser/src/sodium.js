// The one place that loads libsodium.js. The build rewrites the specifier below to
// the copied ES module (browsers cannot resolve bare specifiers without an import
// map, and an inline import map would need 'unsafe-inline' in the CSP).
import sodium from "libsodium-wrappers-sumo";

await sodium.ready;

export default sodium;
