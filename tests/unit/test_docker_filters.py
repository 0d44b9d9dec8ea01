"""Which containers are shipped, what metadata they carry, and finding our own container."""

from __future__ import annotations

from shipper.core.container import Container
from shipper.sources.docker.filters import Filters
from shipper.sources.docker import self_container

ID = "a" * 64
OTHER = "b" * 64


def c(name="web-1", image="nginx:1.25", labels=None, env=None) -> Container:
    return Container(id=ID, name=name, image=image, labels=labels or {}, env=env or {})


def test_opt_outs():
    f = Filters(exclude_label="team:ops")
    assert f.reason(c()) is None
    assert "LOGSPOUT" in str(f.reason(c(env={"LOGSPOUT": "ignore"})))
    assert "logship.ignore" in str(f.reason(c(labels={"logship.ignore": "true"})))
    assert "exclude_label" in str(f.reason(c(labels={"team": "ops"})))
    assert f.reason(c(labels={"team": "dev"})) is None
    assert Filters(exclude_label="team").reason(c(labels={"team": "dev"}))


def test_include_exclude_by_name_image_and_label():
    assert Filters(include=("web-*",)).reason(c()) is None
    assert Filters(include=("db-*",)).reason(c())
    assert Filters(exclude=("web-*",)).reason(c())
    assert Filters(include_image=("nginx:*",)).reason(c()) is None
    assert Filters(exclude_image=("nginx*",)).reason(c())
    assert Filters(include_labels=("tier=front*",)).reason(c(labels={"tier": "frontend"})) is None
    assert Filters(include_labels=("tier=back*",)).reason(c(labels={"tier": "frontend"}))
    assert Filters(exclude_labels=("tier",)).reason(c(labels={"tier": "x"}))


def test_label_allow_list_becomes_container_labels_fields():
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web", "secret.key": "x",
              "app.tier": "front"}
    assert c(labels=labels).ecs() == {
        "container.id": ID, "container.name": "web-1", "container.image.name": "nginx:1.25",
        "container.labels.com_docker_compose_project": "shop", "container.labels.com_docker_compose_service": "web",
    }
    wide = Container(id=ID, name="n", image="i", labels=labels, label_keys=("app.*",))
    assert wide.ecs()["container.labels.app_tier"] == "front" and "container.labels.secret_key" not in wide.ecs()


def test_inspect_gives_pid_state_and_finish_time():
    data = {"Id": ID, "Name": "/x", "Config": {"Image": "img", "Tty": True, "Env": ["A=1=2"]},
            "State": {"Pid": 4242, "Running": True, "FinishedAt": "0001-01-01T00:00:00Z"}}
    got = Container.from_inspect(data)
    assert (got.pid, got.running, got.finished_ns, got.tty, got.env) == (4242, True, 0, True, {"A": "1=2"})


def test_own_container_from_cgroup_and_mountinfo(tmp_path):
    (tmp_path / "cgroup").write_text(f"0::/system.slice/docker-{ID}.scope\n")
    (tmp_path / "mountinfo").write_text("")
    assert self_container.own_container_ids(tmp_path, dockerenv=tmp_path / "no")[0] == {ID}
    (tmp_path / "cgroup").write_text("0::/\n")
    (tmp_path / "mountinfo").write_text(
        f"1 2 0:1 /var/lib/docker/containers/{OTHER}/mounts/shm "
        f"/var/lib/docker/containers/{OTHER}/mounts/shm rw - tmpfs\n"
        f"3 4 8:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw - ext4\n")
    assert self_container.own_container_ids(tmp_path, dockerenv=tmp_path / "no")[0] == {ID}


def test_on_the_host_nothing_is_excluded(tmp_path):
    (tmp_path / "cgroup").write_text("0::/user.slice/session-1.scope\n")
    # the host sees every container's shm mount: none of them is us
    (tmp_path / "mountinfo").write_text(
        f"1 2 0:1 / /var/lib/docker/containers/{OTHER}/mounts/shm rw - tmpfs\n")
    ids, prefix = self_container.own_container_ids(tmp_path, hostname=OTHER[:12], dockerenv=tmp_path / "no")
    assert ids == set() and prefix == ""
    assert self_container.resolve(ids, prefix, [OTHER]) == set()


def test_hostname_prefix_in_a_container(tmp_path):
    (tmp_path / ".dockerenv").write_text("")
    ids, prefix = self_container.own_container_ids(tmp_path, hostname=ID[:12], dockerenv=tmp_path / ".dockerenv")
    assert self_container.resolve(ids, prefix, [OTHER, ID]) == {ID}
