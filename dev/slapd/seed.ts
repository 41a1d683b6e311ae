// The directory every throw-away slapd starts with: dc=example,dc=com with people (alice, bob, an ambiguous uid
// and one user per userPassword storage scheme), groups (cn=smtp-users: alice only), the service account and a
// contractors branch. Password hashes come from slappasswd, not from code of our own.
import { execFileAsync, MODULE_PATH, SLAPPASSWD } from "./tools.ts";

export const BASE_DN = "dc=example,dc=com";

/** The userPassword storage schemes of the scheme users (`<scheme>-user` with password `<scheme>-password`). */
export const PASSWORD_SCHEMES = ["ssha", "sha", "smd5", "md5", "ssha256", "ssha512", "plain"] as const;
export type PasswordScheme = (typeof PASSWORD_SCHEMES)[number];

export interface SeedUser {
  uid: string;
  password: string;
  dn: string;
  mail: string;
  cn: string;
  /** How userPassword is stored in the directory. */
  scheme: "SSHA" | "SHA" | "SMD5" | "MD5" | "SSHA256" | "SSHA512" | "plain";
}

function person(uid: string, ou: string, password: string, scheme: SeedUser["scheme"], mail?: string): SeedUser {
  return {
    uid,
    password,
    dn: `uid=${uid},ou=${ou},${BASE_DN}`,
    mail: mail ?? `${uid}@example.com`,
    cn: uid,
    scheme,
  };
}

const schemeUsers = Object.fromEntries(
  PASSWORD_SCHEMES.map((s) => [
    `${s}-user`,
    person(`${s}-user`, "people", `${s}-password`, s === "plain" ? "plain" : (s.toUpperCase() as SeedUser["scheme"])),
  ]),
) as Record<`${PasswordScheme}-user`, SeedUser>;

/** The seed's users by name: alice, bob, dup, dupContractor and `<scheme>-user` for each of PASSWORD_SCHEMES. */
export type SeedUsers = { alice: SeedUser; bob: SeedUser; dup: SeedUser; dupContractor: SeedUser } & Record<
  `${PasswordScheme}-user`,
  SeedUser
> &
  Record<string, SeedUser>;

/** What the seed holds: every test server starts with exactly this (plus `extraLdif`). */
export const SEED = {
  baseDn: BASE_DN,
  adminDn: `cn=admin,${BASE_DN}`,
  adminPassword: "admin-password",
  serviceDn: `cn=smtpgate,ou=services,${BASE_DN}`,
  servicePassword: "service-password",
  peopleDn: `ou=people,${BASE_DN}`,
  groupsDn: `ou=groups,${BASE_DN}`,
  servicesDn: `ou=services,${BASE_DN}`,
  contractorsDn: `ou=contractors,${BASE_DN}`,
  /** groupOfNames whose only member is alice; `(memberOf=<this>)` matches alice only. */
  smtpUsersGroupDn: `cn=smtp-users,ou=groups,${BASE_DN}`,
  users: {
    /** Member of cn=smtp-users. */
    alice: person("alice", "people", "alice-password", "SSHA"),
    /** Not a member of any group. */
    bob: person("bob", "people", "bob-password", "SSHA"),
    /** uid=dup exists twice (this one and `dupContractor`): an ambiguous user. Same mail on both too. */
    dup: person("dup", "people", "dup-password", "SSHA", "dup@example.com"),
    dupContractor: person("dup", "contractors", "dup-password", "SSHA", "dup@example.com"),
    ...schemeUsers,
  } as SeedUsers,
  /** Both DNs with uid=dup. */
  dupDns: [`uid=dup,ou=people,${BASE_DN}`, `uid=dup,ou=contractors,${BASE_DN}`],
} as const;

// Hashes come from slappasswd (salted ones differ per call; one set per process is plenty).
let hashCache: Promise<Map<string, string>> | undefined;

/** `password` as slappasswd stores it with `scheme` (e.g. "SSHA": salted, so different at each call). */
export async function slappasswd(scheme: string, password: string): Promise<string> {
  const args = ["-h", `{${scheme}}`, "-s", password];
  if (scheme.startsWith("SSHA2") || scheme.startsWith("SSHA5")) {
    args.unshift("-o", `module-path=${MODULE_PATH}`, "-o", "module-load=pw-sha2");
  }
  const { stdout } = await execFileAsync(SLAPPASSWD, args);
  const hash = stdout.trim();
  if (!hash.startsWith(`{${scheme}}`)) throw new Error(`slappasswd -h {${scheme}} printed ${JSON.stringify(hash)}`);
  return hash;
}

function hashKey(scheme: string, password: string): string {
  return `${scheme}\u0000${password}`;
}

export function seedHashes(): Promise<Map<string, string>> {
  hashCache ??= (async () => {
    const wanted = new Map<string, [string, string]>();
    const want = (scheme: string, password: string): void => {
      wanted.set(hashKey(scheme, password), [scheme, password]);
    };
    want("SSHA", SEED.adminPassword);
    want("SSHA", SEED.servicePassword);
    for (const u of Object.values(SEED.users)) if (u.scheme !== "plain") want(u.scheme, u.password);
    const entries = await Promise.all(
      [...wanted].map(async ([key, [scheme, pw]]) => [key, await slappasswd(scheme, pw)] as const),
    );
    return new Map(entries);
  })();
  hashCache.catch(() => (hashCache = undefined));
  return hashCache;
}

export function storedPassword(hashes: Map<string, string>, scheme: SeedUser["scheme"], password: string): string {
  if (scheme === "plain") return password;
  const h = hashes.get(hashKey(scheme, password));
  if (!h) throw new Error(`no hash for ${scheme}`);
  return h;
}

export function seedLdif(hashes: Map<string, string>): string {
  const entries: string[] = [
    [
      `dn: ${BASE_DN}`,
      "objectClass: top",
      "objectClass: dcObject",
      "objectClass: organization",
      "dc: example",
      "o: Example",
    ].join("\n"),
  ];
  for (const ou of ["people", "groups", "services", "contractors"]) {
    entries.push([`dn: ou=${ou},${BASE_DN}`, "objectClass: organizationalUnit", `ou: ${ou}`].join("\n"));
  }
  entries.push(
    [
      `dn: ${SEED.serviceDn}`,
      "objectClass: organizationalRole",
      "objectClass: simpleSecurityObject",
      "cn: smtpgate",
      "description: smtpgate service account",
      `userPassword: ${storedPassword(hashes, "SSHA", SEED.servicePassword)}`,
    ].join("\n"),
  );
  for (const u of Object.values(SEED.users)) {
    entries.push(
      [
        `dn: ${u.dn}`,
        "objectClass: inetOrgPerson",
        `uid: ${u.uid}`,
        `cn: ${u.cn}`,
        `sn: ${u.uid}`,
        `mail: ${u.mail}`,
        `userPassword: ${storedPassword(hashes, u.scheme, u.password)}`,
      ].join("\n"),
    );
  }
  entries.push(
    [
      `dn: ${SEED.smtpUsersGroupDn}`,
      "objectClass: groupOfNames",
      "cn: smtp-users",
      `member: ${SEED.users.alice.dn}`,
    ].join("\n"),
  );
  return entries.join("\n\n") + "\n";
}
