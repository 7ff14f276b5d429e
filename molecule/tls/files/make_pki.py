"""The tls scenario's test PKI: a CA, an intermediate, and the sites' certificates.

    python make_pki.py DIR     (idempotent: an existing DIR/ca.pem is kept)

shop (shop.example.test, www.shop.example.test) is issued by the intermediate (so its
bundle has a chain); blog (blog.example.test) by the CA, and blog2 is blog's replacement
for the rotation test. Clients verify against DIR/ca.pem.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trustme


def main(out: Path) -> int:
    if (out / "ca.pem").exists():
        return 0
    out.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    inter = ca.create_child_ca()
    shop = inter.issue_cert("shop.example.test", "www.shop.example.test")
    blog = ca.issue_cert("blog.example.test")
    blog2 = ca.issue_cert("blog.example.test")
    ca.cert_pem.write_to_path(str(out / "ca.pem"))
    inter.cert_pem.write_to_path(str(out / "shop.chain"))
    for name, leaf in (("shop", shop), ("blog", blog), ("blog2", blog2)):
        leaf.cert_chain_pems[0].write_to_path(str(out / f"{name}.crt"))
        leaf.private_key_pem.write_to_path(str(out / f"{name}.key"))
        (out / f"{name}.key").chmod(0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
