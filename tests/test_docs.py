"""Documentation against the binary: man pages, --help and bash completion.

issue 7 / design.rst section 4: each command's usage array drives --help and
the man page; this suite keeps the two in step.  It also holds the code's
citations of the repository's contracts (Documentation/format.rst and
Documentation/design.rst) to sections those documents have.

  * every Documentation/btrfs-extcrypt*.rst builds with rst2man without a
    warning and renders with `man -l` (MANWIDTH=80) into a non-empty page
    with the sections NAME, SYNOPSIS, DESCRIPTION, OPTIONS, EXIT STATUS,
    EXAMPLES and SEE ALSO;
  * the commands listed by `btrfs-extcrypt --help` and the command pages are
    the same set (hidden commands have no page), and the main page's
    COMMANDS section lists exactly them;
  * per command: the option lines of `--help` and the terms of the OPTIONS
    section are the same set, spelled the same ("-s|--super <N>"), except
    that every page documents --help, which every command accepts; each
    synopsis line of --help is in SYNOPSIS; the NAME line is the --help
    summary; the exit statuses --help mentions are in EXIT STATUS;
  * the main page documents the global options of `--help` the same way;
  * every problem code of check/check-problems.c is in btrfs-extcrypt-check(8)
    and the reverse;
  * the bash completion offers exactly the commands, subcommands and
    options of --help;
  * format.rst and design.rst build without a warning, and every section
    number a source file cites ("format.rst section 5.4") is a section of
    the document it names; no file cites the specifications outside the
    repository (format.md, design.md: expected to fail until the citations
    are rewritten).

The man pages are built here, from the .rst sources into a temporary
directory, so the suite does not depend on `make man`.  The binary is
$EXTCRYPT_BIN (conftest.py); rst2man (python3-docutils) and man (man-db)
are needed for the tests that use them, which skip with a reason otherwise.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent
DOC = SRC / "Documentation"
COMPLETION = SRC / "contrib" / "bash-completion" / "btrfs-extcrypt"
PROBLEMS_C = SRC / "check" / "check-problems.c"
PROG = "btrfs-extcrypt"

PAGES = sorted(p.stem for p in DOC.glob(PROG + "*.rst"))
REQUIRED_SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS",
                     "EXAMPLES", "SEE ALSO")


# ---- --help parsing --------------------------------------------------------

class Help:
    """The parts of a --help text: synopsis lines, summary, option specs
    (the text after the TAB of each OPTLINE, e.g. "-s|--super <N>"), the
    exit statuses the text mentions, and the command list of a group."""

    def __init__(self, text):
        self.text = text
        lines = text.splitlines()
        if not lines or not lines[0].startswith("usage: "):
            raise AssertionError("--help does not start with 'usage: ':\n" + text)
        self.synopsis = [lines[0][len("usage: "):].strip()]
        i = 1
        while i < len(lines) and lines[i].startswith("       " + PROG):
            self.synopsis.append(lines[i].strip())
            i += 1
        self.summary = lines[i].strip() if i < len(lines) else ""
        self.options = [ln[1:].rstrip() for ln in lines
                        if ln.startswith("\t-") and not ln.startswith("\t\t")]
        self.exit_codes = set()
        m = re.search(r"Exit (?:status|codes)\b(.*?)(?:\n\s*\n|\Z)", text, re.S)
        if m:
            self.exit_codes = {int(c) for c in
                               re.findall(r"(?<![\w.,])([0-9])(?= [a-z(])", m.group(1))}
        self.commands = []
        in_list = False
        for ln in lines:
            if ln.startswith("Commands:"):
                in_list = True
                continue
            m = re.match(r"^  ([a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)?)\s{2,}\S", ln)
            if in_list and m:
                self.commands.append(tuple(m.group(1).split()))


def option_names(spec):
    """"-s|--super <N>" -> ["-s", "--super"]; "-v, --verbose" -> both."""
    names = []
    for word in spec.split():
        if not word.startswith("-"):
            break
        names += [w for w in re.split(r"[|,]", word) if w.startswith("-")]
    return names


def norm(s):
    return " ".join(s.split())


# ---- man page (roff from rst2man) parsing ------------------------------------

_ESCAPES = [(r"\fB", ""), (r"\fI", ""), (r"\fR", ""), (r"\fP", ""), (r"\-", "-"),
            (r"\(aq", "'"), (r"\(dq", '"'), (r"\(ga", "`"), (r"\(ti", "~"),
            (r"\(ha", "^"), (r"\&", ""), (r"\ ", " "), (r"\e", "\\"), (r"\(em", "--"),
            (r"\(en", "-"), (r"\(bu", "*")]


def unroff(s):
    for a, b in _ESCAPES:
        s = s.replace(a, b)
    return s


class ManPage:
    """Sections of a roff page: the text of each .SH section and the
    definition-list terms (the line after each .TP) inside it."""

    def __init__(self, roff):
        self.text = {}
        self.terms = {}
        cur = None
        after_tp = False
        for raw in roff.splitlines():
            if raw.startswith(".SH"):
                cur = unroff(raw[3:].strip().strip('"'))
                self.text[cur] = []
                self.terms[cur] = []
                after_tp = False
                continue
            if cur is None or raw.startswith(".\\\""):
                continue
            if raw.startswith(".TP"):
                after_tp = True
                continue
            line = raw
            if line.startswith("."):
                m = re.match(r"^\.(B|I|BI|BR|IR|RB|RI|IB|SS)\s+(.*)$", line)
                if not m:
                    continue  # layout macros: .sp .nf .fi .INDENT ...
                line = m.group(2).strip('"')
            line = unroff(line)
            if after_tp:
                self.terms[cur].append(line.strip())
                after_tp = False
            self.text[cur].append(line)

    def section(self, name):
        return "\n".join(self.text.get(name, []))

    def name_line(self):
        """("btrfs-extcrypt-check", "check the consistency ...")."""
        name = norm(self.section("NAME"))
        page, _, desc = name.partition(" - ")
        return page.strip(), desc.strip()


# ---- fixtures ----------------------------------------------------------------

def _rst2man_cmd():
    exe = shutil.which("rst2man") or shutil.which("rst2man.py")
    if exe:
        return [exe]
    try:
        import docutils  # noqa: F401
    except ImportError:
        return None
    # Same writer, without the wrapper script.
    return [sys.executable, "-c",
            "import sys; from docutils.core import publish_cmdline; "
            "from docutils.writers import manpage; "
            "publish_cmdline(writer=manpage.Writer())"]


@pytest.fixture(scope="session")
def man_pages(tmp_path_factory):
    """page stem -> (path of the .8, rst2man stderr, exit code)."""
    cmd = _rst2man_cmd()
    if not cmd:
        pytest.skip("rst2man not found: install python3-docutils")
    out = tmp_path_factory.mktemp("man8")
    built = {}
    for stem in PAGES:
        dest = out / (stem + ".8")
        res = subprocess.run(cmd + ["--halt=warning", str(DOC / (stem + ".rst")), str(dest)],
                             capture_output=True, text=True, timeout=60)
        built[stem] = (dest, res.stderr, res.returncode)
    return built


def _man_page(man_pages, stem):
    dest, err, rc = man_pages[stem]
    assert rc == 0 and dest.exists(), "rst2man failed on %s.rst:\n%s" % (stem, err)
    return ManPage(dest.read_text())


@pytest.fixture(scope="session")
def helps(run):
    """Help texts: () for the top level, then one per command tuple."""
    res = run("--help")
    assert res.returncode == 0, res.stderr
    top = Help(res.stdout)
    assert top.commands, "no command list in --help:\n" + res.stdout
    out = {(): top}
    for words in top.commands:
        res = run(*words, "--help")
        assert res.returncode == 0, "%s --help exits %d: %s" % (
            " ".join(words), res.returncode, res.stderr)
        assert not res.stderr.strip(), "%s --help writes to stderr" % " ".join(words)
        out[words] = Help(res.stdout)
    return out


def page_of(words):
    return "-".join((PROG,) + tuple(words))


def _command_for_page(helps, stem):
    for words in helps:
        if words and page_of(words) == stem:
            return words
    return None


# ---- tests: pages build and render ------------------------------------------

@pytest.mark.parametrize("stem", PAGES)
def test_page_builds_and_renders(stem, man_pages):
    page = _man_page(man_pages, stem)
    missing = [s for s in REQUIRED_SECTIONS if s not in page.text]
    assert not missing, "%s.rst lacks the sections %s" % (stem, missing)
    name, desc = page.name_line()
    assert name == stem and desc, "NAME of %s.rst is %r" % (stem, norm(page.section("NAME")))

    man = shutil.which("man")
    if not man:
        pytest.skip("man not found (Debian package man-db): rendering not checked")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C", MANPAGER="cat", PAGER="cat")
    env.pop("MAN_KEEP_FORMATTING", None)
    res = subprocess.run([man, "--warnings", "-l", str(man_pages[stem][0])],
                         capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, "man -l %s.8 exits %d:\n%s" % (stem, res.returncode, res.stderr)
    assert res.stdout.strip(), "man -l %s.8 printed nothing" % stem
    assert not res.stderr.strip(), "man -l %s.8 warns:\n%s" % (stem, res.stderr)
    text = res.stdout
    for section in REQUIRED_SECTIONS:
        assert re.search(r"^%s$" % re.escape(section), text, re.M), \
            "rendered %s.8 has no %s heading" % (stem, section)
    # Every option named in the OPTIONS terms is in the rendered OPTIONS text.
    m = re.search(r"^OPTIONS$(.*?)^[A-Z][A-Z ]+$", text, re.M | re.S)
    assert m, "rendered %s.8: no OPTIONS section" % stem
    for term in page.terms["OPTIONS"]:
        for opt in option_names(term):
            assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), m.group(1)), \
                "rendered %s.8 OPTIONS lacks %s" % (stem, opt)


# ---- tests: commands and pages ----------------------------------------------

def test_every_command_has_a_page_and_every_page_a_command(helps):
    commands = [w for w in helps if w]
    missing = [" ".join(w) for w in commands if page_of(w) not in PAGES]
    assert not missing, "commands of --help without a page in Documentation/: %s" % missing
    extra = [p for p in PAGES if p != PROG and _command_for_page(helps, p) is None]
    assert not extra, ("pages for commands that --help does not list "
                       "(hidden or removed commands get no page): %s" % extra)
    assert PROG in PAGES, "no main page Documentation/%s.rst" % PROG


def test_main_page_lists_the_commands(helps, man_pages):
    page = _man_page(man_pages, PROG)
    assert "COMMANDS" in page.terms, "%s.rst has no COMMANDS section" % PROG
    listed = [tuple(t.split()) for t in page.terms["COMMANDS"]]
    expected = [w for w in helps if w]
    assert sorted(listed) == sorted(expected), (
        "COMMANDS of %s(8) %s != --help %s" % (PROG, listed, expected))
    see_also = norm(page.section("SEE ALSO"))
    for words in expected:
        assert page_of(words) + "(8)" in see_also, \
            "SEE ALSO of %s(8) lacks %s(8)" % (PROG, page_of(words))


def test_main_page_matches_top_level_help(helps, man_pages):
    top = helps[()]
    page = _man_page(man_pages, PROG)
    _check_page_against_help(PROG, page, top, help_is_implicit=False)
    for code in range(5):
        assert str(code) in page.terms["EXIT STATUS"], \
            "%s(8) EXIT STATUS lacks %d" % (PROG, code)


@pytest.mark.parametrize("stem", [p for p in PAGES if p != PROG])
def test_command_page_matches_help(stem, helps, man_pages):
    words = _command_for_page(helps, stem)
    if words is None:
        pytest.fail("%s.rst documents no command of --help" % stem)
    _check_page_against_help(stem, _man_page(man_pages, stem), helps[words],
                             help_is_implicit=True)


def _check_page_against_help(stem, page, hlp, help_is_implicit):
    # Options: the same spellings both ways.
    in_help = {norm(s) for s in hlp.options}
    in_page = {norm(t) for t in page.terms["OPTIONS"]}
    if help_is_implicit:
        # Every command takes --help; its page says so even if its usage does not.
        assert "--help" in in_page, "%s(8) does not document --help" % stem
        in_help.add("--help")
    missing = sorted(in_help - in_page)
    extra = sorted(in_page - in_help)
    assert not missing, "%s(8) OPTIONS lacks (spelled as in --help): %s" % (stem, missing)
    assert not extra, "%s(8) OPTIONS has what --help does not list: %s" % (stem, extra)

    # Synopsis lines of the usage array, in SYNOPSIS.
    synopsis = {norm(ln) for ln in page.section("SYNOPSIS").splitlines() if ln.strip()}
    for line in hlp.synopsis:
        assert norm(line) in synopsis, "%s(8) SYNOPSIS lacks %r (has %s)" % (
            stem, line, sorted(synopsis))

    # NAME line = the one-line summary of --help.
    _, desc = page.name_line()
    assert desc.lower().rstrip(".") == hlp.summary.lower().rstrip("."), (
        "%s(8) NAME says %r, --help says %r" % (stem, desc, hlp.summary))

    # Exit statuses --help mentions are documented.
    documented = {int(t) for t in page.terms["EXIT STATUS"] if t.isdigit()}
    assert documented, "%s(8) EXIT STATUS lists no status" % stem
    assert 0 in documented and 2 in documented, \
        "%s(8) EXIT STATUS lacks 0 or 2: %s" % (stem, sorted(documented))
    missing = sorted(hlp.exit_codes - documented)
    assert not missing, "%s(8) EXIT STATUS lacks %s, which --help mentions" % (stem, missing)


def test_hidden_commands_are_not_documented(helps):
    # `debug` exists but is hidden; it must stay out of --help and the pages.
    assert ("debug",) not in helps and not any(w and w[0] == "debug" for w in helps)
    assert not [p for p in PAGES if p.startswith(PROG + "-debug")]


# ---- tests: check's problem table --------------------------------------------

def test_check_problem_codes_are_documented(man_pages):
    if not PROBLEMS_C.exists():
        pytest.skip("no %s" % PROBLEMS_C)
    codes = set(re.findall(r'\[PR_\w+\]\s*=\s*\{\s*"([A-Z0-9_]+)"', PROBLEMS_C.read_text()))
    assert codes, "no problem codes found in %s" % PROBLEMS_C
    page = _man_page(man_pages, PROG + "-check")
    assert "PROBLEM CODES" in page.terms, "btrfs-extcrypt-check(8) has no PROBLEM CODES"
    documented = {t.split()[0] for t in page.terms["PROBLEM CODES"] if t.strip()}
    assert not sorted(codes - documented), \
        "codes of check-problems.c missing from btrfs-extcrypt-check(8): %s" % sorted(
            codes - documented)
    assert not sorted(documented - codes), \
        "btrfs-extcrypt-check(8) documents codes check does not have: %s" % sorted(
            documented - codes)


# ---- tests: bash completion --------------------------------------------------

_COMPLETE = r'''
source "$1"; shift
t() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _btrfs_extcrypt
    printf '%s\n' "${COMPREPLY[@]}"
}
t "$@"
'''


@pytest.fixture(scope="session")
def complete(bin):
    bash = shutil.which("bash")
    if not bash:
        pytest.skip("bash not found")
    assert COMPLETION.exists(), "no bash completion at %s" % COMPLETION

    def run_completion(*words):
        res = subprocess.run([bash, "--norc", "--noprofile", "-c", _COMPLETE, "bash",
                              str(COMPLETION), str(bin)] + list(words),
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return {w for w in res.stdout.splitlines() if w}
    return run_completion


def test_completion_of_commands(helps, complete):
    expected = {w[0] for w in helps if w}
    assert complete("") == expected
    for group in sorted({w[0] for w in helps if len(w) == 2}):
        subs = {w[1] for w in helps if len(w) == 2 and w[0] == group}
        assert complete(group, "") == subs, group
        # An abbreviated group name completes too (prefixes are accepted).
        assert complete(group[:3], "") == subs, group[:3]


def test_completion_of_global_options(helps, complete):
    expected = {n for s in helps[()].options for n in option_names(s)}
    assert complete("-") == expected
    assert complete("--format", "") == {"text", "json"}


def test_completion_of_command_options(helps, complete):
    for words in (w for w in helps if w):
        expected = {n for s in helps[words].options for n in option_names(s)} | {"--help"}
        got = complete(*words, "-")
        assert got == expected, "%s: completion %s != --help %s" % (
            " ".join(words), sorted(got), sorted(expected))


# ---- tests: the repository's contracts (format.rst, design.rst) --------------
#
# Code comments cite Documentation/format.rst and Documentation/design.rst by
# section number ("format.rst section 5.4", "format.rst 2.8", "design.rst
# §5", "format.rst sections 3, 4 and 5.2", "format.rst 13.3/13.4",
# "format.rst sections 5-9").  Every number cited must be the number of a
# section title of that document.  Citations of format.md / design.md (the
# specifications outside the repository) are checked the same way, as the
# format.rst / design.rst they are to be rewritten to, with the same numbers.

SPEC_DOCS = {"format": DOC / "format.rst", "design": DOC / "design.rst"}
CITING_SUFFIXES = (".c", ".h", ".py", ".sh")
CITING_NAMES = ("Makefile.in", "configure.ac")
_SECNUM = r"(?:Appendix\s+)?(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)*)(?![\w.]*\w)"
_CITATION = re.compile(
    r"\b(format|design)\.(rst|md)\b[\s*#]*(?:sections?\b[\s*#]*|§\s*)?"
    r"(" + _SECNUM + r"(?:\s*(?:,|/|-|–|\band\b|\bor\b)[\s*#]*" + _SECNUM + r")*)")
_TITLE = re.compile(r"^(?:Appendix\s+([A-Z])|(\d+(?:\.\d+)*|[A-Z](?:\.\d+)+))\s+\S")
SELF = Path(__file__).resolve()


def citing_files():
    """The tree's sources and scripts (no build directories, nothing hidden)."""
    for root, dirs, files in os.walk(SRC):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "build"))
                         and d != "__pycache__")
        for name in sorted(files):
            path = Path(root) / name
            if path.resolve() == SELF:
                continue
            if name.endswith(CITING_SUFFIXES) or name in CITING_NAMES:
                yield path


def section_numbers(rst):
    """Numbers of the section titles of an .rst file ("2", "2.4", "13.1",
    "A", "A.1"): a title is a line under which comes an underline of one
    punctuation character at least as long as the title."""
    lines = rst.read_text(encoding="utf-8").splitlines()
    found = set()
    for title, under in zip(lines, lines[1:]):
        under = under.rstrip()
        if (title.strip() and under and len(set(under)) == 1 and not under[0].isalnum()
                and len(under) >= len(title.rstrip())):
            m = _TITLE.match(title.strip())
            if m:
                found.add(m.group(1) or m.group(2))
    return found


def cited_numbers(text):
    """(doc, ext, number, line) for every section number a text cites; a
    range "5-9" yields each top-level number from 5 to 9."""
    for m in _CITATION.finditer(text):
        doc, ext, numbers = m.group(1), m.group(2), m.group(3)
        line = text.count("\n", 0, m.start()) + 1
        nums = [re.sub(r"^Appendix\s+", "", n) for n in re.findall(_SECNUM, numbers)]
        for n in nums:
            yield doc, ext, n, line
        for a, b in re.findall(r"(\d+)\s*[-–]\s*(\d+)(?![\d.])", numbers):
            for n in range(int(a) + 1, int(b)):
                yield doc, ext, str(n), line


def test_contract_documents_build():
    """format.rst and design.rst build with docutils without a warning."""
    try:
        import docutils.core
        import docutils.utils
    except ImportError:
        pytest.skip("docutils not found: install python3-docutils")
    import io
    for doc in SPEC_DOCS.values():
        assert doc.exists(), "no %s" % doc
        stream = io.StringIO()
        try:
            docutils.core.publish_doctree(
                doc.read_text(encoding="utf-8"), source_path=str(doc),
                settings_overrides={"halt_level": 2, "report_level": 2,
                                    "warning_stream": stream})
        except docutils.utils.SystemMessage as e:
            pytest.fail("%s does not build cleanly: %s\n%s" % (doc.name, e, stream.getvalue()))
        assert not stream.getvalue().strip(), "%s warns:\n%s" % (doc.name, stream.getvalue())


def test_contract_documents_have_their_sections():
    fmt = section_numbers(SPEC_DOCS["format"])
    missing = [str(n) for n in range(16) if str(n) not in fmt]
    assert not missing and "A" in fmt, \
        "format.rst lacks the sections %s (0..15 and Appendix A)" % (missing + ["A"] * ("A" not in fmt))
    design = section_numbers(SPEC_DOCS["design"])
    missing = [str(n) for n in range(1, 9) if str(n) not in design]
    assert not missing, "design.rst lacks the sections %s" % missing


def test_cited_sections_exist():
    """Every "format.rst section N" / "design.rst N" (and format.md / design.md
    citations, as the format.rst / design.rst they become) names a section
    title of that document."""
    sections = {doc: section_numbers(path) for doc, path in SPEC_DOCS.items()}
    bad = []
    count = 0
    for path in citing_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for doc, ext, num, line in cited_numbers(text):
            count += 1
            if num not in sections[doc]:
                bad.append("%s:%d: %s.%s section %s" % (path.relative_to(SRC), line, doc, ext, num))
    assert not bad, ("citations of sections that Documentation/format.rst or design.rst "
                     "does not have:\n  " + "\n  ".join(bad))
    assert count, "no section citations found at all: is the citation pattern broken?"


def test_no_citation_outside_the_repository():
    """Comments cite Documentation/format.rst and design.rst, never the
    specifications outside the repository (format.md, design.md, shared/spec)."""
    old = re.compile(r"\b(?:format|design)\.md\b|shared/spec")
    bad = []
    for path in citing_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in old.finditer(text):
            bad.append("%s:%d: %s" % (path.relative_to(SRC), text.count("\n", 0, m.start()) + 1,
                                      m.group(0)))
    for path in [SRC / "README.md", SRC / "tests" / "README.md"] + sorted(DOC.glob("*.rst")):
        text = path.read_text(encoding="utf-8")
        for m in old.finditer(text):
            bad.append("%s:%d: %s" % (path.relative_to(SRC), text.count("\n", 0, m.start()) + 1,
                                      m.group(0)))
    assert not bad, "citations outside the repository:\n  " + "\n  ".join(bad)
