// The session baseline: a bare smtp-server with TLS and the library's defaults, no policy, no API, no upstream:
// every AUTH is accepted and DATA is read and discarded. Prints "PORT <n>" when it listens.
import { readFileSync } from "node:fs";
import { SMTPServer } from "smtp-server";

const [keyFile, certFile] = process.argv.slice(2) as [string, string];
const server = new SMTPServer({
  key: readFileSync(keyFile),
  cert: readFileSync(certFile),
  minVersion: "TLSv1.2",
  authMethods: ["PLAIN", "LOGIN"],
  disableReverseLookup: true,
  logger: false,
  onAuth(auth, _session, callback) {
    callback(null, { user: auth.username });
  },
  onData(stream, _session, callback) {
    stream.on("end", () => callback());
    stream.resume();
  },
});
server.listen(0, "127.0.0.1", () => {
  const address = (server as unknown as { server: { address(): { port: number } } }).server.address();
  process.stdout.write(`PORT ${address.port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
