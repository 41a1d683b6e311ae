// What certificate decisions need around the API, in one call: the client PKI, its CRLs on a local HTTP server (the
// distribution points in the certificates point there), and a private slapd holding the seed users plus the
// certificate-mapping schema and entries for that PKI. The stack, the benchmark and the Workers tests start it.
import { generateClientPki, type ClientPki } from "./client-pki/index.ts";
import { CAC_SCHEMA, certUsersLdif } from "./client-pki/directory-entries.ts";
import { serveCrls, type CrlServer } from "./crl-server.ts";
import { startSlapd, type SlapdInstance } from "./slapd/index.ts";

export interface DirectoryWithPki {
  slapd: SlapdInstance;
  pki: ClientPki;
  /** Serves `/intermediate.crl` (lists `revoked`) and `/root.crl` (empty). */
  crls: CrlServer;
  /** Stops slapd and the CRL server. */
  close(): Promise<void>;
}

export async function startDirectoryWithPki(
  options: { extraLdif?: string; monitor?: boolean } = {},
): Promise<DirectoryWithPki> {
  const crls = await serveCrls();
  try {
    const pki = await generateClientPki({ crlBaseUrl: crls.baseUrl });
    crls.set("/intermediate.crl", pki.crls.intermediateCurrent.der);
    crls.set("/root.crl", pki.crls.rootCurrent.der);
    const extraLdif = [certUsersLdif(pki), ...(options.extraLdif ? [options.extraLdif] : [])].join("\n");
    const slapd = await startSlapd({ extraSchema: CAC_SCHEMA, extraLdif, monitor: options.monitor ?? false });
    return {
      slapd,
      pki,
      crls,
      close: async () => {
        await slapd.close();
        await crls.close();
      },
    };
  } catch (error) {
    await crls.close();
    throw error;
  }
}
