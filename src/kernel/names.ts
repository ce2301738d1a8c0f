// Naming rules, each written once: DNS labels (projects, services), Docker network names,
// container names and SPIFFE identities. infra/variables.tf repeats the DNS-label rule for
// Terraform's own validation; test/unit/contract.test.ts keeps the two equal.

/** RFC 1123 label: lowercase letters, digits and '-', 1-63 chars, no '-' at either end. */
export const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const DNS_LABEL_HINT =
  "use lowercase letters, digits and '-', 1-63 characters, not starting or ending with '-'";
/** Docker's rule for network names (as accepted by `docker network create`), <= 63 chars. */
export const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export const isDnsLabel = (s: string): boolean => DNS_LABEL_RE.test(s);
export const isNetworkName = (s: string): boolean => NETWORK_NAME_RE.test(s);

/** The identity of the control plane (iac itself) in every certificate and sidecar allow-list. */
export const CONTROL_PLANE_SPIFFE_ID = "spiffe://iac/control-plane";

/** A service's identity: URI SAN of its leaf cert, matched by peers' sidecars. */
export function serviceSpiffeId(project: string, service: string): string {
  return `spiffe://${project}/${service}`;
}

/** Container names (infra/main.tf builds the same: "<project>-<service>[-envoy]"). */
export const appContainerName = (project: string, service: string): string =>
  `${project}-${service}`;
