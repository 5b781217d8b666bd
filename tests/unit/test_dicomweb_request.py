"""DICOMweb sources read and checked (pure): the allow-list by origin and root path, the UIDs, one series per part,
the client's credential and the whole-slide options; the server settings that would make a source ambiguous."""

import pytest
from pydantic import ValidationError

from serve.config.dicomweb import DicomwebSettings
from serve.gateway.dicomweb.credentials import credential
from serve.gateway.dicomweb.request import DicomwebSource, Patch, references, remote_options
from serve.gateway.errors import GatewayError

ROOT = "http://10.0.0.5:8042/dicom-web"
SETTINGS = DicomwebSettings(
    servers=[
        {"name": "pacs", "base_url": ROOT + "/"},
        {
            "name": "cloud",
            "base_url": "https://dicom.example.org/v1/stores/a/dicomWeb",
            "forward_client_credential": True,
        },
    ]
)


def refs(*urls):
    return references([DicomwebSource(f"src[{k}]", url) for k, url in enumerate(urls)], SETTINGS)


def code_of(call) -> str:
    with pytest.raises(GatewayError) as caught:
        call()
    return caught.value.code


def test_a_series_url_under_a_root_names_its_server_and_uids():
    (ref,) = refs(ROOT + "/studies/1.2.3/series/4.5.6")
    assert (ref.server.name, ref.study, ref.series, ref.instance) == ("pacs", "1.2.3", "4.5.6", None)
    (ref,) = refs("https://DICOM.example.org:443/v1/stores/a/dicomWeb/studies/1/series/2/instances/3")
    assert (ref.server.name, ref.instance) == ("cloud", "3")  # host case and the default port do not matter


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5:8043/dicom-web/studies/1/series/2",  # another port
        "https://10.0.0.5:8042/dicom-web/studies/1/series/2",  # another scheme
        "http://10.0.0.6:8042/dicom-web/studies/1/series/2",  # another host
        "http://10.0.0.5:8042/dicom-webx/studies/1/series/2",  # a root that only starts alike
        "https://dicom.example.org/v1/stores/b/dicomWeb/studies/1/series/2",
    ],
)
def test_anything_outside_the_configured_roots_is_not_allowed(url):
    assert code_of(lambda: refs(url)) == "dicomweb_server_not_allowed"


@pytest.mark.parametrize(
    "tail",
    [
        "/studies/1.2",
        "/studies/1/series/2/instances",
        "/studies/1/series/2/frames/1",
        "/studies/1/series/2/instances/3/frames/1",
        "/studies/1/series/../series/2",
        "/studies/1/series/2%2e",
        "/studies/1/series/2?a=b",
        "/studies/1/series/2#f",
        "/studies/1.a/series/2",
        "/studies/" + "1" * 65 + "/series/2",
    ],
)
def test_only_plain_study_series_and_instance_paths_are_taken(tail):
    assert code_of(lambda: refs(ROOT + tail)) == "invalid_dicomweb_url"


def test_user_info_in_the_url_is_refused():
    assert (
        code_of(lambda: refs("http://u:p@10.0.0.5:8042/dicom-web/studies/1/series/2"))
        == "invalid_dicomweb_url"
    )


def test_one_part_is_one_series_on_one_server():
    series = ROOT + "/studies/1/series/2"
    assert len(refs(series + "/instances/3", series + "/instances/4")) == 2
    assert code_of(lambda: refs(series, ROOT + "/studies/1/series/9")) == "invalid_volume"
    assert code_of(lambda: refs(series, series + "/instances/4")) == "invalid_volume"


def test_no_configured_server_refuses_every_reference():
    source = DicomwebSource("src[0]", ROOT + "/studies/1/series/2")
    assert code_of(lambda: references([source], DicomwebSettings())) == "dicomweb_not_configured"


def test_a_client_credential_is_taken_only_where_the_server_forwards_it():
    pacs, cloud = SETTINGS.servers
    assert remote_options({"access_credential": "t0k"}, "p", cloud, 125).credential == "t0k"
    assert code_of(lambda: remote_options({"access_credential": "t0k"}, "p", pacs, 125)) == (
        "dicomweb_credential_not_accepted"
    )
    assert code_of(lambda: remote_options({"access_credential": "a\r\nX-Evil: 1"}, "p", cloud, 125)) == (
        "invalid_request"
    )


def test_which_credential_goes_and_that_it_never_shows_in_a_repr(monkeypatch, tmp_path):
    pacs, cloud = SETTINGS.servers
    assert credential(cloud, "t0k").header == "Bearer t0k" and "t0k" not in repr(credential(cloud, "t0k"))
    assert credential(pacs, None).header is None
    monkeypatch.setenv("PACS_AUTH", "Basic c2VjcmV0")
    with_env = pacs.model_copy(update={"authorization_env": "PACS_AUTH"})
    assert credential(with_env, None).header == "Basic c2VjcmV0"
    secret = tmp_path / "auth"
    secret.write_text("Bearer from-a-file\n")
    assert (
        credential(pacs.model_copy(update={"authorization_file": secret}), None).header
        == "Bearer from-a-file"
    )
    monkeypatch.setenv("PACS_AUTH", "")
    with pytest.raises(GatewayError) as caught:
        credential(with_env, None)
    assert caught.value.status == 502 and "PACS_AUTH" not in caught.value.message


def test_patch_options_are_checked():
    cloud = SETTINGS.servers[1]
    box = {"x_origin": 0, "y_origin": 896, "width": 896, "height": 896}
    assert remote_options({"patch_coordinates": [box]}, "p", cloud, 125).patches == [Patch(0, 896, 896, 896)]
    assert remote_options({"max_patches": 40}, "p", cloud, 125).max_patches == 40
    assert code_of(lambda: remote_options({"max_patches": 126}, "p", cloud, 125)) == "too_many_images"
    assert code_of(lambda: remote_options({"max_patches": True}, "p", cloud, 125)) == "too_many_images"
    for bad in (
        {**box, "x_origin": -1},
        {**box, "width": 0},
        {**box, "z": 1},
        {**box, "height": "896"},
        [0, 0],
    ):
        assert code_of(lambda bad=bad: remote_options({"patch_coordinates": [bad]}, "p", cloud, 125)) == (
            "invalid_patch_coordinates"
        )
    assert (
        code_of(lambda: remote_options({"patch_coordinates": [box] * 3}, "p", cloud, 2)) == "too_many_images"
    )


@pytest.mark.parametrize(
    "servers",
    [
        [{"name": "a", "base_url": "http://h/dicom-web"}, {"name": "b", "base_url": "http://h/dicom-web/x"}],
        [{"name": "a", "base_url": "http://h/a"}, {"name": "a", "base_url": "http://h/b"}],
        [{"name": "a", "base_url": "http://h/a?x=1"}],
        [{"name": "a", "base_url": "http://user:pw@h/a"}],
        [{"name": "a", "base_url": "ftp://h/a"}],
        [{"name": "A b", "base_url": "http://h/a"}],
        [{"name": "a", "base_url": "http://h/a", "authorization_env": "X", "authorization_file": "/f"}],
    ],
)
def test_ambiguous_or_unsafe_server_settings_fail_at_load(servers):
    with pytest.raises(ValidationError):
        DicomwebSettings(servers=servers)
