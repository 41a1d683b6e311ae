// A private nginx mail proxy for the tests and the demo: Debian's nginx with libnginx-mod-mail, run as
// `nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'` from a temp folder, on free loopback ports, with the mail block
// of dev/nginx/mail.conf (the file docs/integrations/nginx.md shows) filled in. Stopped by its PID; a system nginx
// started by the package has nothing to do with it.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "../ports.ts";
import { killOnExit, removeOnExit } from "../processes.ts";
import { waitFor } from "../wait.ts";

/** The mail block, with `${NAME}` placeholders. */
export const MAIL_CONF_FILE = new URL("./mail.conf", import.meta.url).pathname;
const NGINX = "/usr/sbin/nginx";
const MAIL_MODULE = "/usr/lib/nginx/modules/ngx_mail_module.so";

export interface NginxMailOptions {
  /** The decision API's base URL, e.g. http://127.0.0.1:8787 (nginx needs an IP or a name it resolves at start). */
  apiUrl: string;
  apiToken: string;
  /** The smtpgate listener whose endpoint nginx asks (it must have an `upstream`). */
  listener: string;
  /** nginx's own certificate and key (PEM files). */
  certFile: string;
  keyFile: string;
  /** The CAs nginx verifies client certificates against: root and intermediates (PEM file). */
  clientCaFile: string;
}

export interface NginxMail {
  ports: { starttls: number; implicitTls: number };
  dir: string;
  pid: number;
  /** The worker processes' PIDs (they do the work; the master only watches them). */
  workerPids(): number[];
  /** nginx's error log so far (its auth_http failures are there). */
  errorLog(): Promise<string>;
  stop(): Promise<void>;
}

/** `template` with every `${NAME}` replaced from `values`; a name without a value is an error, not an empty string. */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for \${${name}}`);
    return value;
  });
}

export async function startNginxMail(options: NginxMailOptions): Promise<NginxMail> {
  const dir = await mkdtemp(join(tmpdir(), "smtpgate-nginx-"));
  const forget = removeOnExit(dir);
  const [starttls, implicitTls] = (await freePorts(2)) as [number, number];
  const mail = fillTemplate(await readFile(MAIL_CONF_FILE, "utf8"), {
    MAIL_HOSTNAME: "mail.test",
    SMTPGATE_API: options.apiUrl.replace(/\/$/, ""),
    SMTPGATE_LISTENER: options.listener,
    SMTPGATE_TOKEN: options.apiToken,
    TLS_CERT: options.certFile,
    TLS_KEY: options.keyFile,
    CLIENT_CA_BUNDLE: options.clientCaFile,
    STARTTLS_LISTEN: `127.0.0.1:${starttls}`,
    IMPLICIT_TLS_LISTEN: `127.0.0.1:${implicitTls}`,
  });
  const errorLog = join(dir, "error.log");
  await writeFile(join(dir, "mail.conf"), mail);
  await writeFile(
    join(dir, "nginx.conf"),
    [
      `load_module ${MAIL_MODULE};`,
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${errorLog} info;`,
      "worker_processes 1;",
      "events { worker_connections 256; }",
      `include ${join(dir, "mail.conf")};`,
      "",
    ].join("\n"),
  );
  // -e: the log for what nginx says before it has read error_log (it would open /var/log/nginx/error.log).
  const child = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", errorLog, "-g", "daemon off;"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  killOnExit(child);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const readLog = () => readFile(errorLog, "utf8").catch(() => "");
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
    forget();
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}${await readLog()}`);
        return (await listening(starttls)) && (await listening(implicitTls));
      },
      { timeoutMs: 10_000, what: `nginx listening on ${starttls} and ${implicitTls}` },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const pid = child.pid as number;
  const workerPids = () =>
    readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  return { ports: { starttls, implicitTls }, dir, pid, workerPids, errorLog: readLog, stop };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
