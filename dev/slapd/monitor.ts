// What a slapd started with `monitor: true` has done: the binds it completed (every one: the service bind of each
// pooled connection and each user's bind), read from cn=Monitor as the admin. Tests count directory traffic with it.
import { Client } from "ldapts";
import type { SlapdInstance } from "./index.ts";

export async function completedBinds(slapd: SlapdInstance): Promise<number> {
  const client = new Client({ url: slapd.ldapUrl });
  try {
    await client.bind(slapd.adminDn, slapd.adminPassword);
    const { searchEntries } = await client.search("cn=Bind,cn=Operations,cn=Monitor", {
      scope: "base",
      attributes: ["monitorOpCompleted"],
    });
    // Less this client's own bind, which slapd has completed by now.
    return Number(searchEntries[0]?.monitorOpCompleted) - 1;
  } finally {
    await client.unbind();
  }
}
