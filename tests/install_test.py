#!/usr/bin/env python3
"""Installation and the Debian package, from a finished build tree.

usage: install_test.py tree BUILD_DIR   installs into a temporary DESTDIR with
                                        prefix /usr: every file of the layout
                                        is there, the programs are executable,
                                        the installed sil-server answers --help
                                        with exit 0, and the installed sil-lab
                                        draws plots with share/sil/plot.py
       install_test.py deb BUILD_DIR    builds the .deb with cpack into a
                                        temporary directory: it holds exactly
                                        the installed files, and its Depends
                                        names the package of every shared
                                        library the installed programs load
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

LAYOUT = {
    "usr/bin/sil-server": True,  # executable?
    "usr/bin/sil-lab": True,
    "usr/bin/sil-model": True,
    "usr/share/sil/plot.py": True,
    "usr/share/sil/sil.conf.example": False,
    "usr/share/doc/sil/README.md": False,
    "usr/share/doc/sil/design.md": False,
    "usr/share/doc/sil/model.md": False,
    "usr/share/doc/sil/weights-format.md": False,
}
PROGRAMS = [p for p, x in LAYOUT.items() if x and p.startswith("usr/bin/")]


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)


def install(build, dest):
    env = dict(os.environ, DESTDIR=dest)
    r = run(["cmake", "--install", build, "--prefix", "/usr"], env=env)
    assert r.returncode == 0, f"cmake --install failed:\n{r.stdout}\n{r.stderr}"


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def check_tree(build):
    with tempfile.TemporaryDirectory(prefix="sil-install-") as dest:
        install(build, dest)
        for rel, executable in LAYOUT.items():
            path = os.path.join(dest, rel)
            assert os.path.isfile(path), f"not installed: /{rel}"
            if executable:
                assert os.access(path, os.X_OK), f"not executable: /{rel}"
        extra = files_under(dest) - set(LAYOUT)
        assert not extra, f"installed but not in the documented layout: {sorted(extra)}"
        with open(os.path.join(dest, "usr/share/sil/sil.conf.example")) as f:
            assert "node-name=" in f.read(), "share/sil/sil.conf.example is not the example config"
        server = os.path.join(dest, "usr/bin/sil-server")
        r = run([server, "--help"])
        assert r.returncode == 0, f"installed sil-server --help exited {r.returncode}:\n{r.stderr}"
        text = r.stdout + r.stderr
        assert "--port" in text or "port" in text, f"--help says nothing about the port:\n{text}"
        # The installed sil-lab finds its plot script in share/sil (no source
        # tree, no SIL_PLOT_SCRIPT): a tiny pure-model run draws its plots.
        env = {k: v for k, v in os.environ.items() if k != "SIL_PLOT_SCRIPT"}
        out = os.path.join(dest, "lab-out")
        r = run([os.path.join(dest, "usr/bin/sil-lab"), "drift", "--quick", "--preset", "seed",
                 "--trials", "20", "--steps", "3", "--out", out], cwd=dest, env=env)
        assert r.returncode == 0, f"installed sil-lab drift exited {r.returncode}:\n{r.stderr}"
        assert "no plots" not in r.stderr, f"installed sil-lab found no plot script:\n{r.stderr}"
        pngs = [f for f in os.listdir(os.path.join(out, "drift")) if f.endswith(".png")]
        assert pngs, f"installed sil-lab drew no plots: {os.listdir(os.path.join(out, 'drift'))}"
        print(f"install: {len(LAYOUT)} files under {dest}/usr; sil-server --help exits 0; "
              f"the installed sil-lab drew {sorted(pngs)} with share/sil/plot.py")


def package_of(lib):
    """The Debian package that ships shared library `lib`, or None."""
    candidates = {lib, os.path.realpath(lib)}
    for c in list(candidates):  # merged /usr: dpkg knows one of the spellings
        if c.startswith("/usr/lib/"):
            candidates.add(c[len("/usr"):])
        elif c.startswith("/lib"):
            candidates.add("/usr" + c)
    for c in candidates:
        r = run(["dpkg", "-S", c])
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    return None


def provides(pkg):
    r = run(["dpkg-query", "-W", "-f=${Provides}", pkg])
    names = {pkg}
    for item in r.stdout.split(","):
        item = item.strip()
        if item:
            names.add(item.split()[0])
    return names


def check_deb(build):
    for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps", "ldd"):
        assert shutil.which(tool), f"{tool} not found (scripts/setup.sh installs it)"
    with tempfile.TemporaryDirectory(prefix="sil-deb-") as out:
        r = run(["cpack", "--config", os.path.join(build, "CPackConfig.cmake"), "-B", out])
        assert r.returncode == 0, f"cpack failed:\n{r.stdout}\n{r.stderr}"
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1, f"expected one .deb in {out}: {os.listdir(out)}"
        deb = os.path.join(out, debs[0])
        fields = {}
        for name in ("Package", "Version", "Depends", "Architecture"):
            fields[name] = run(["dpkg-deb", "-f", deb, name]).stdout.strip()
        assert fields["Package"] == "sil", fields
        assert re.fullmatch(r"\d+\.\d+\.\d+", fields["Version"]), fields
        # The package's files are the installed layout, under /usr.
        listing = run(["dpkg-deb", "-c", deb]).stdout.splitlines()
        packaged = {l.split()[-1].lstrip("./") for l in listing if not l.startswith("d")}
        assert packaged == set(LAYOUT), (sorted(packaged ^ set(LAYOUT)), listing)
        # Every shared library of every program is a dependency.
        root = os.path.join(out, "root")
        r = run(["dpkg-deb", "-x", deb, root])
        assert r.returncode == 0, r.stderr
        depends = {d.strip().split()[0] for alt in fields["Depends"].split(",")
                   for d in alt.split("|") if d.strip()}
        needed = {}
        for prog in PROGRAMS:
            for line in run(["ldd", os.path.join(root, prog)]).stdout.splitlines():
                m = re.search(r"=>\s+(/\S+)", line)
                if not m:
                    continue
                pkg = package_of(m.group(1))
                assert pkg, f"{prog}: no Debian package ships {m.group(1)}"
                needed.setdefault(pkg, set()).add(os.path.basename(prog))
        missing = [f"{pkg} (for {', '.join(sorted(progs))})" for pkg, progs in needed.items()
                   if not provides(pkg) & depends]
        assert not missing, f"Depends ({fields['Depends']}) lacks: {missing}"
        for lib in ("libcaf-core0.17", "libcaf-io0.17", "libprometheus-cpp-core1.0"):
            assert lib in depends, f"{lib} not in Depends: {fields['Depends']}"
        print(f"deb: {debs[0]}, {len(packaged)} files; Depends: {fields['Depends']}")


def main():
    mode, build = sys.argv[1], os.path.abspath(sys.argv[2])
    {"tree": check_tree, "deb": check_deb}[mode](build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
