"""Basic auth, bearer-token auth and TLS from a test CA, through real registries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from image_fixtures import GOOD, WRONG, Registries

from shoal.api.errors import NotFound, Unauthenticated, Unknown
from shoal.images.auth import ANONYMOUS, Credentials, decode_registry_auth, encode_registry_auth
from shoal.images.errors import RegistryError, RegistryUnauthorized
from shoal.images.service import ImageService


async def last_message(service: ImageService, ref: str, auth: Credentials = ANONYMOUS) -> dict[str, Any]:
    messages = [m async for m in await service.pull(ref, auth=auth)]
    return messages[-1]


async def refused(service: ImageService, ref: str, auth: Credentials = ANONYMOUS) -> str:
    """A refusal comes before the first message: raised as dockerd answers it, 404 for `pull access
    denied` and 500 for turned-down credentials (never 401, which makes the docker CLI prompt)."""
    with pytest.raises((NotFound, Unknown)) as raised:
        await service.pull(ref, auth=auth)
    assert not isinstance(raised.value, Unauthenticated)
    assert isinstance(raised.value, NotFound) == str(raised.value).startswith("pull access denied")
    return str(raised.value)


async def test_basic_auth_refuses_no_and_wrong_credentials_and_accepts_right_ones(
        registries: Registries, service: ImageService) -> None:
    ref = f"{registries.basic.host}/test/app:v1"
    assert await refused(service, ref) == (
        f"pull access denied for {registries.basic.host}/test/app, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied")
    assert await refused(service, ref, WRONG) == (
        f'Get "http://{registries.basic.host}/v2/test/app/manifests/v1": unauthorized: authentication required')
    assert service.store.meta.refs == {}
    # Credentials travel as the Engine API's X-Registry-Auth header does.
    creds = decode_registry_auth(encode_registry_auth(GOOD, registries.basic.host))
    done = await last_message(service, ref, creds)
    assert done == {"status": f"Status: Downloaded newer image for {ref}"}
    assert (await service.resolve(ref)).id == registries.images.app_v1.id


async def test_token_auth_gets_a_token_with_the_credentials(registries: Registries, service: ImageService) -> None:
    ref = f"{registries.token.host}/test/app:v2"
    assert (await refused(service, ref)).startswith("pull access denied for")
    assert await refused(service, ref, WRONG) == (
        f'Get "{registries.tokens.realm}": unauthorized: incorrect username or password')
    before = registries.tokens.requests
    done = await last_message(service, ref, GOOD)
    assert done == {"status": f"Status: Downloaded newer image for {ref}"}
    assert registries.tokens.requests > before
    assert (await service.resolve(ref)).id == registries.images.app_v2.id


async def test_tls_with_the_registry_ca_in_certs_d(registries: Registries, tmp_path: Path) -> None:
    ref = f"{registries.tls.host}/test/app:v1"
    strict = ImageService(tmp_path / "strict", loopback_insecure=False, certs_dir=registries.certs_dir)
    assert await last_message(strict, ref) == {"status": f"Status: Downloaded newer image for {ref}"}


async def test_tls_from_an_unknown_ca_is_refused_unless_insecure(registries: Registries, tmp_path: Path) -> None:
    ref = f"{registries.tls.host}/test/app:v1"
    strict = ImageService(tmp_path / "strict", loopback_insecure=False)
    with pytest.raises(RegistryError, match="certificate verify failed"):
        await strict.ensure(ref)
    assert strict.store.meta.refs == {}
    # Named insecure (as --insecure-registry), or on loopback (dockerd's default), it is accepted.
    named = ImageService(tmp_path / "named", loopback_insecure=False, insecure_registries=[registries.tls.host])
    assert (await named.ensure(ref)).id == registries.images.app_v1.id
    loopback = ImageService(tmp_path / "loopback")
    assert (await loopback.ensure(ref)).id == registries.images.app_v1.id


async def test_plain_http_is_not_tried_for_a_secure_registry(registries: Registries, tmp_path: Path) -> None:
    """The open registry speaks only HTTP: a registry not named insecure must not be downgraded."""
    strict = ImageService(tmp_path / "strict", loopback_insecure=False)
    with pytest.raises(RegistryError):
        await strict.ensure(f"{registries.open.host}/test/app:v1")
    named = ImageService(tmp_path / "named", loopback_insecure=False, insecure_registries=["127.0.0.0/8"])
    assert (await named.ensure(f"{registries.open.host}/test/app:v1")).id == registries.images.app_v1.id


async def test_the_oci_executor_can_use_the_service_as_its_image_source(registries: Registries,
                                                                         service: ImageService) -> None:
    """The executor passes a service's registry auth as the X-Registry-Auth JSON (a dict)."""
    from shoal.executor.oci.source import ImageSource

    source: ImageSource = service
    assert isinstance(source, ImageSource)
    ref = f"{registries.basic.host}/test/app:v1"
    with pytest.raises(RegistryUnauthorized, match="pull access denied"):
        await source.ensure(ref, None)
    resolved = await source.ensure(ref, {"username": GOOD.username, "password": GOOD.password,
                                         "serveraddress": registries.basic.host})
    assert resolved.id == registries.images.app_v1.id


async def test_login_checks_the_credentials_against_the_registry(registries: Registries,
                                                                service: ImageService) -> None:
    for registry in (registries.basic, registries.token):
        assert await service.login(registry.host, GOOD) == {"Status": "Login Succeeded", "IdentityToken": ""}
    with pytest.raises(RegistryUnauthorized, match=r"^login attempt to http://127\.0\.0\.1:\d+/v2/ failed with status: "
                                            r"401 Unauthorized$"):
        await service.login(registries.basic.host, WRONG)
    with pytest.raises(RegistryUnauthorized, match="incorrect username or password"):
        await service.login(registries.token.host, WRONG)
