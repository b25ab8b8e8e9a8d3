"""`edgeq keygen`, `edgeq sign`, `edgeq verify`: Ed25519 signatures of blobs (docs/signing.md)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Private key file (PEM, mode 0600); the public key goes to OUTPUT.pub.")
@click.option("--force", is_flag=True, help="Overwrite an existing key.")
def keygen(out: Path, force: bool) -> None:
    """Create an Ed25519 signing key pair."""
    from edgeq.blob.sign import generate_key, key_id, load_public_key

    private, public = generate_key(out, force=force)
    click.echo(f"private key {private} (keep it secret), public key {public} "
               f"(key id {key_id(load_public_key(public)).hex()})")


@click.command()
@click.argument("blob", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--key", "key_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Private key from `edgeq keygen`.")
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the signed blob here instead of rewriting BLOB.")
def sign(blob: Path, key_path: Path, out: Path | None) -> None:
    """Sign BLOB (atomic rewrite; checksums updated)."""
    from edgeq.blob.sign import key_id, load_private_key, sign_blob

    target = sign_blob(blob, key_path, out)
    kid = key_id(load_private_key(key_path).public_key().public_bytes_raw()).hex()
    click.echo(f"signed {target} (Ed25519, key id {kid})")


@click.command()
@click.argument("blob", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--pub", "pub", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Public key (.pub from `edgeq keygen`, or PEM).")
def verify(blob: Path, pub: Path) -> None:
    """Check BLOB's checksums and its Ed25519 signature against PUB (exit 2 if unsigned, other key, tampered)."""
    from edgeq.blob.sign import key_id, load_public_key, verify_blob

    verify_blob(blob, pub)
    click.echo(f"{blob}: signature ok (key id {key_id(load_public_key(pub)).hex()})")
