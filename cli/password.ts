/**
 * The password for `smtpgate test-auth`: never from the command line (it would sit in the shell history and in
 * every process listing). From a terminal, a prompt that does not echo; otherwise the first line of stdin:
 *
 *   printf '%s\n' "$PASSWORD" | smtpgate test-auth --listener submission --user alice
 */
import { CommandError, EXIT } from "./command.ts";

export async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return firstLine(await readAll(stdin));
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let typed = "";
      stdin.on("data", function onKey(chunk: Buffer) {
        for (const char of chunk.toString("utf8")) {
          if (char === "\r" || char === "\n") {
            stdin.off("data", onKey);
            resolve(typed);
            return;
          }
          if (char === "\u0003") {
            stdin.off("data", onKey);
            reject(new CommandError("cancelled", 130));
            return;
          }
          typed = char === "\u007f" || char === "\b" ? typed.slice(0, -1) : typed + char;
        }
      });
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write("\n");
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString("utf8");
}

function firstLine(text: string): string {
  const end = text.search(/\r?\n/);
  if (text === "")
    throw new CommandError("no password on stdin (pipe it in, or run from a terminal for a prompt)", EXIT.usage);
  return end === -1 ? text : text.slice(0, end);
}
