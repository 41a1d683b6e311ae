/**
 * SIGHUP reloads the API's configuration file (as Postfix, nginx and slapd's admins expect): a valid new file is
 * served from then on, requests in flight finish on the old gate; an invalid one is refused and logged with each
 * problem, and the configuration in force stays. Reloads run one after another, never interleaved.
 */
import { ConfigError } from "../../config/load.ts";
import type { Logger } from "../../http/app.ts";
import { readConfigFile, type ApiServer } from "./server.ts";

export function reloadOnSighup(server: Pick<ApiServer, "reload">, path: string, log: Logger): void {
  let reloading = Promise.resolve();
  const reload = async (): Promise<void> => {
    try {
      const config = await readConfigFile(path);
      await server.reload(config);
      log({
        level: "info",
        msg: "configuration reloaded",
        config: path,
        directories: Object.keys(config.directories),
        listeners: Object.keys(config.listeners),
      });
    } catch (error) {
      log({
        level: "error",
        msg: "reload refused: the configuration in force stays",
        config: path,
        ...(error instanceof ConfigError ? { problems: error.problems } : { error: String(error) }),
      });
    }
  };
  process.on("SIGHUP", function onSighup() {
    log({ level: "info", msg: "reloading", signal: "SIGHUP", config: path });
    reloading = reloading.then(reload);
  });
}
