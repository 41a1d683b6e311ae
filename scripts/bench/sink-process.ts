// The upstream MTA for the session benchmark, in its own process so its CPU is not billed to the load generator.
// Keeps nothing (counts only); takes XCLIENT (nginx's). Prints "PORT <n>".
import { startSink } from "../../dev/sink.ts";

let count = 0;
const sink = await startSink({ xclient: true, onMessage: () => (count += 1) });
sink.messages.length = 0;
// Drop stored messages as they come: the benchmark sends thousands.
setInterval(() => (sink.messages.length = 0), 1000).unref();
process.stdout.write(`PORT ${sink.port}\n`);
process.on("SIGTERM", () => {
  process.stderr.write(`sink: ${count} messages\n`);
  void sink.close().then(() => process.exit(0));
});
