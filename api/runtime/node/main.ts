/**
 * smtpgate decision API on Node.js, the API alone (`smtpgate serve` also serves the configured fronts).
 *
 *   npm start -- --config /etc/smtpgate/smtpgate.yaml
 */
import { runApiCommand } from "./command.ts";

await runApiCommand(process.argv.slice(2));
