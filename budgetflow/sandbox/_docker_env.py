"""A Python environment as a Docker image: the base image plus the environment's venv at ENV_MOUNT (one layer),
with its ``bin/`` first on PATH. Made once per environment and base image, offline (no registry, no build context:
the venv is copied into a created container and committed), and checked once: the image's interpreter must be the
one the venv was built on, and must import pytest from it."""
from __future__ import annotations

import io
import tarfile
from typing import Any

from ._environments import ENV_MOUNT, PythonEnv
from ._models import SandboxUnavailable

IMAGE_REPO = "budgetflow/env"
_PATH = f"{ENV_MOUNT}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def env_image_tag(env: PythonEnv, base_image: str) -> str:
    import hashlib

    base = hashlib.sha256(base_image.encode()).hexdigest()[:8]
    return f"{IMAGE_REPO}:{env.key[:16]}-{base}"


def ensure_env_image(client: Any, base_image: str, env: PythonEnv, labels: dict[str, str]) -> str:
    """The image tag for ``env`` on ``base_image``, built now when missing. Raises SandboxUnavailable when the base
    image cannot run the environment (another Python version)."""
    import docker

    tag = env_image_tag(env, base_image)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    container = client.containers.create(base_image, command=["true"], labels=labels)
    try:
        container.put_archive("/", _venv_tar(env))
        repo, _, version = tag.partition(":")
        container.commit(repository=repo, tag=version, changes=[f"ENV PATH={_PATH}", f"ENV VIRTUAL_ENV={ENV_MOUNT}",
                                                                 f'LABEL budgetflow.env="{env.key}"'])
    finally:
        container.remove(force=True)
    _check(client, tag, env)
    return tag


def _check(client: Any, tag: str, env: PythonEnv) -> None:
    probe = ("import sys, pytest; print('%d.%d.%d' % sys.version_info[:3], sys.prefix)")
    try:
        out = client.containers.run(tag, [env.sandbox_python, "-c", probe], remove=True, network_mode="none")
        version, prefix = out.decode().split()
    except Exception as err:  # noqa: BLE001 — any failure means the image cannot run the environment
        client.images.remove(tag, force=True)
        raise SandboxUnavailable(f"the Docker image {tag} cannot run environment {env.key[:12]}: {err}") from None
    if version != env.python_version or prefix != ENV_MOUNT:
        client.images.remove(tag, force=True)
        raise SandboxUnavailable(
            f"environment {env.key[:12]} was built on Python {env.python_version}, but the Docker base image runs "
            f"Python {version}: rebuild the base image (scripts/setup_docker.sh) from the same Debian release as "
            "the host's /usr/bin/python3, or set BUDGETFLOW_ENV_PYTHON to an interpreter like the image's")


def _venv_tar(env: PythonEnv) -> bytes:
    """The venv as a tar rooted at ENV_MOUNT (links kept as links: bin/python points at /usr/bin/python3)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        parts = ENV_MOUNT.strip("/").split("/")
        for i in range(1, len(parts)):  # the parent directories, world-readable
            info = tarfile.TarInfo("/".join(parts[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(env.path, arcname=ENV_MOUNT.strip("/"), filter=_owned_by_root)
    return buf.getvalue()


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode |= 0o444 | (0o111 if info.isdir() or info.mode & 0o100 else 0)
    return info
