// Prints the JSON Schema of the configuration file: `npm run schema > smtpgate.schema.json`.
import { configJsonSchema } from "./schema.ts";

process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
