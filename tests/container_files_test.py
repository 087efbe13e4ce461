#!/usr/bin/env python3
"""Checks deploy/Dockerfile and .dockerignore without a Docker engine.

- both stages use one pinned Debian 12 point release (debian:12.N-slim, or
  a digest), not a moving tag;
- the runtime stage installs no curl or wget, installs the build with
  `cmake --install`, and its health check is `sil-server --probe` on
  /health/ready;
- the runtime stage's packages provide every shared library the built
  sil-server loads (beyond what the Debian base image always has);
- .dockerignore leaves out .git, build trees, docs/ and reports/, and the
  build context it leaves configures with the Dockerfile's own command, and
  holds every file the `runtime` install component needs.

usage: container_files_test.py SOURCE_DIR SIL_SERVER
"""
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

# In every debian:12 slim image (apt needs them).
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1", "libgcc1"}
PROBE = ["sil-server", "--probe", "http://127.0.0.1:8000/health/ready"]


def stages(dockerfile):
    """The Dockerfile's stages: lists of (instruction, argument text), with
    continuation lines joined."""
    text = re.sub(r"\\\n", " ", open(dockerfile).read())
    out, args = [], {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not out:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip()
            continue
        if word == "FROM":
            image = rest.split()[0]
            for k, v in args.items():
                image = image.replace("${" + k + "}", v)
            out.append([("FROM", image)])
            continue
        out[-1].append((word, rest.strip()))
    return out


def apt_packages(run_text):
    pkgs = []
    for m in re.finditer(r"apt-get install ([^&;]*)", run_text):
        pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def library_packages(binary):
    out = set()
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    for m in re.finditer(r"=>\s+(/\S+)", ldd):
        path = m.group(1)
        cands = {path, os.path.realpath(path)}
        for c in list(cands):
            if c.startswith("/usr/lib/"):
                cands.add(c[len("/usr"):])
            elif c.startswith("/lib"):
                cands.add("/usr" + c)
        for c in cands:
            r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
            if r.returncode == 0:
                out.add(r.stdout.split(":", 1)[0].strip())
                break
        else:
            raise AssertionError(f"no Debian package ships {path}")
    return out


def ignored(rel, patterns):
    parts = rel.split("/")
    for p in patterns:
        p = p.rstrip("/")
        if p.startswith("**/"):
            if any(fnmatch.fnmatch(x, p[3:]) for x in parts):
                return True
        elif fnmatch.fnmatch(parts[0], p) or fnmatch.fnmatch(rel, p):
            return True
    return False


def main():
    src, server = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    st = stages(os.path.join(src, "deploy", "Dockerfile"))
    assert len(st) == 2, f"expected a build and a runtime stage, got {len(st)}"
    build, runtime = st
    images = [s[0][1] for s in st]
    for image in images:
        assert re.fullmatch(r"debian:12\.\d+-slim(@sha256:[0-9a-f]{64})?", image), \
            f"base image {image!r} is not a pinned Debian 12 point release"
    assert images[0] == images[1], f"build and runtime bases differ: {images}"

    run_rt = " ".join(a for w, a in runtime if w == "RUN")
    rt_pkgs = apt_packages(run_rt)
    for tool in ("curl", "wget"):
        assert tool not in rt_pkgs, f"the runtime stage installs {tool}"
    run_build = " ".join(a for w, a in build if w == "RUN")
    assert "cmake --install" in run_build, "the build stage does not use cmake --install"
    assert "scripts/setup.sh" not in run_build, "the build stage installs the full dev setup"
    checks = [a for w, a in runtime if w == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    cmd = re.search(r"CMD\s+(\[.*\])", checks[0])
    assert cmd, checks[0]
    assert [x.strip().strip('"') for x in cmd.group(1)[1:-1].split(",")] == PROBE, checks[0]

    needed = library_packages(server) - BASE_PACKAGES
    missing = needed - set(rt_pkgs)
    assert not missing, f"the runtime stage lacks {sorted(missing)} (installs {rt_pkgs})"
    print(f"Dockerfile: base {images[0]}, runtime packages {rt_pkgs} cover {sorted(needed)}")

    patterns = [l.strip() for l in open(os.path.join(src, ".dockerignore"))
                if l.strip() and not l.startswith("#")]
    for must in (".git", "docs/", "reports/", "build*/"):
        assert must in patterns, f".dockerignore does not leave out {must}"

    # The context Docker would send, configured with the Dockerfile's command.
    configure = next(a for w, a in build if w == "RUN" and "cmake --preset" in a)
    configure = configure.split("&&")[0].replace('"${SIL_GIT_COMMIT}"', "test")
    with tempfile.TemporaryDirectory(prefix="sil-context-") as ctx:
        for d, dirs, files in os.walk(src):
            rel_d = os.path.relpath(d, src)
            rel_d = "" if rel_d == "." else rel_d + "/"
            dirs[:] = [x for x in dirs if not ignored(rel_d + x, patterns)]
            for f in files:
                rel = rel_d + f
                if ignored(rel, patterns):
                    continue
                os.makedirs(os.path.join(ctx, rel_d), exist_ok=True)
                shutil.copy2(os.path.join(src, rel), os.path.join(ctx, rel))
        for gone in ("docs", "reports", ".git"):
            assert not os.path.exists(os.path.join(ctx, gone)), gone
        for need in ("experiments/plot.py", "config/sil.conf.example", "CMakePresets.json"):
            assert os.path.isfile(os.path.join(ctx, need)), f"the context lacks {need}"
        env = dict(os.environ, CCACHE_DISABLE="1")
        r = subprocess.run(shlex.split(configure), cwd=ctx, capture_output=True, text=True,
                           timeout=300, env=env)
        assert r.returncode == 0, f"configure in the build context failed:\n{r.stdout}\n{r.stderr}"
        print(f"build context: {configure!r} configures without docs/, reports/, .git")
    return 0


if __name__ == "__main__":
    sys.exit(main())
