#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: lbcore contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pem_bundle
short_description: Assemble and check the certificate bundle a TLS frontend loads
version_added: "0.1.0"
description:
  - Writes certificate, chain and private key into one PEM file, in the order HAProxy and
    lbcore load them (certificate, chain, key).
  - Refuses a key that does not match the certificate and a chain that is out of order,
    before anything is written.
  - Reports subject, SANs and days to expiry, and warns when expiry is near.
  - The diff shows certificate fingerprints and subjects only, never key material.
options:
  path:
    description: Where the bundle is written.
    type: path
    required: true
  cert:
    description: The leaf certificate, PEM text. Mutually exclusive with O(cert_src).
    type: str
  cert_src:
    description: Path on the managed host of the leaf certificate.
    type: path
  chain:
    description: Intermediate certificates, PEM text, leaf's issuer first.
    type: str
  chain_src:
    description: Path on the managed host of the intermediate certificates.
    type: path
  key:
    description: The private key, PEM text. Mutually exclusive with O(key_src).
    type: str
  key_src:
    description: Path on the managed host of the private key.
    type: path
  mode:
    description: File mode of the bundle.
    type: raw
    default: "0600"
  owner:
    description: Owner of the bundle.
    type: str
  group:
    description: Group of the bundle.
    type: str
  warn_days:
    description: Warn when the certificate expires in fewer days than this.
    type: int
    default: 30
  state:
    description: C(present) writes the bundle; C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
requirements:
  - cryptography (Debian package python3-cryptography) on the managed host
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the state before and after.
author:
  - lbcore contributors (@lbcore)
"""

EXAMPLES = r"""
- name: Bundle the shop's certificate for the balancer
  lbcore.fleet.pem_bundle:
    path: /etc/lbcore/certs/shop.example.com.pem
    cert: "{{ lookup('ansible.builtin.file', 'certs/shop.crt') }}"
    chain: "{{ lookup('ansible.builtin.file', 'certs/intermediate.crt') }}"
    key: "{{ shop_key }}"
    warn_days: 21
  no_log: true

- name: Remove a retired site's bundle
  lbcore.fleet.pem_bundle:
    path: /etc/lbcore/certs/old.example.com.pem
    state: absent
"""

RETURN = r"""
path:
  description: The bundle's path.
  returned: always
  type: str
subject:
  description: The certificate's subject (RFC 4514).
  returned: when state is present
  type: str
  sample: CN=shop.example.com
sans:
  description: DNS names of the certificate.
  returned: when state is present
  type: list
  elements: str
not_after:
  description: Expiry, UTC.
  returned: when state is present
  type: str
  sample: "2027-03-01T12:00:00Z"
days_to_expiry:
  description: Whole days until expiry (negative when expired).
  returned: when state is present
  type: int
fingerprint_sha256:
  description: SHA-256 fingerprint of the certificate.
  returned: when state is present
  type: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.lbcore.fleet.plugins.module_utils import pem as pemlib


def _read(module, text_name, src_name):
    text = module.params[text_name]
    src = module.params[src_name]
    if src:
        try:
            with open(src, "rb") as handle:
                return handle.read()
        except OSError as exc:
            module.fail_json(msg="cannot read %s %s: %s" % (src_name, src, to_native(exc)))
    return text.encode() if text is not None else None


def _current(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _summary(pem_bytes):
    """What the diff may show of a bundle: certificate identities, no key."""
    if pem_bytes is None:
        return ""
    try:
        certs = pemlib.load_certs(pem_bytes)
    except pemlib.BundleError:
        return "(unreadable bundle)\n"
    return "".join(
        "%s %s\n" % (c.subject.rfc4514_string(), pemlib.describe(c)["fingerprint_sha256"])
        for c in certs
    )


def run(module):
    path = module.params["path"]
    if module.params["state"] == "absent":
        exists = os.path.exists(path)
        if exists and not module.check_mode:
            os.unlink(path)
        return {"changed": exists, "path": path}
    if not pemlib.HAS_CRYPTOGRAPHY:
        module.fail_json(msg="pem_bundle needs the Python 'cryptography' package on the host")
    cert = _read(module, "cert", "cert_src")
    key = _read(module, "key", "key_src")
    chain = _read(module, "chain", "chain_src") or b""
    if cert is None or key is None:
        module.fail_json(msg="state=present needs cert (or cert_src) and key (or key_src)")
    try:
        leaf, chain_certs, private_key = pemlib.check_bundle(cert, chain, key)
    except pemlib.BundleError as exc:
        module.fail_json(msg="%s: %s" % (path, to_native(exc)))
    info = pemlib.describe(leaf)
    wanted = pemlib.assemble(leaf, chain_certs, private_key)
    before = _current(path)
    result = dict(info, path=path, changed=before != wanted)
    if info["days_to_expiry"] < module.params["warn_days"]:
        module.warn(
            "certificate %s expires in %d days (%s)"
            % (info["subject"], info["days_to_expiry"], info["not_after"])
        )
    if module._diff:
        result["diff"] = {
            "before": _summary(before),
            "after": _summary(wanted),
            "before_header": path,
            "after_header": path,
        }
    if result["changed"] and not module.check_mode:
        directory = os.path.dirname(path) or "."
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pem_bundle.")
        try:
            os.fchmod(fd, 0o600)  # never readable by others, even for a moment
            with os.fdopen(fd, "wb") as handle:
                handle.write(wanted)
            module.atomic_move(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    file_args = module.load_file_common_arguments(module.params)
    if os.path.exists(path) and not (module.check_mode and before is None):
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            cert=dict(type="str"),
            cert_src=dict(type="path"),
            chain=dict(type="str"),
            chain_src=dict(type="path"),
            key=dict(type="str", no_log=True),
            key_src=dict(type="path"),
            mode=dict(type="raw", default="0600"),
            owner=dict(type="str"),
            group=dict(type="str"),
            warn_days=dict(type="int", default=30),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("cert", "cert_src"), ("key", "key_src"), ("chain", "chain_src")],
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
