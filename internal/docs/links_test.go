package docs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// readmeMaxLines keeps README a front door: what the tool is, how to get it,
// the two commands, a first switchover, and links to the pages under docs/.
const readmeMaxLines = 300

// pendingPages are pages the README links to that are written on branches of
// their own. Once a page is here, drop it from this list: the test then
// checks its links like any other, and it fails while the page is listed.
var pendingPages = map[string]bool{}

// TestLinks checks every relative link and #anchor in README.md and the
// pages under docs/: the file must exist, and the anchor must be a heading
// of that file as GitHub names it.
func TestLinks(t *testing.T) {
	pages := markdownPages(t)
	docs := map[string]*page{}
	for _, p := range pages {
		docs[p] = readPage(t, p)
	}
	for p := range pendingPages {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err == nil {
			t.Errorf("%s exists now: remove it from pendingPages so that its links are checked", p)
		}
	}
	for _, p := range pages {
		for _, l := range docs[p].links {
			if msg := resolve(p, l.target, docs); msg != "" {
				t.Errorf("%s:%d: link %q: %s", p, l.line, l.target, msg)
			}
		}
	}
}

// TestReadmeIsAFrontDoor keeps README short, and keeps the two commands
// CI and a newcomer run where they are, as they are.
func TestReadmeIsAFrontDoor(t *testing.T) {
	p := readPage(t, "README.md")
	if p.lines > readmeMaxLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail to a page under docs/ and link it", p.lines, readmeMaxLines)
	}
	for _, cmd := range []string{"make demo ", "make test "} {
		if !p.hasCodeLine(cmd) {
			t.Errorf("README.md: no line starting %q in a code block: the two commands are the README's promise (CI runs `make test`)", cmd)
		}
	}
}

// TestExampleRunbookInDocs keeps the first runbook of docs/runbooks.md the
// one the tests load and run (runbook/spec, cmd/switchover), verbatim.
func TestExampleRunbookInDocs(t *testing.T) {
	const example = "runbook/spec/testdata/valid/example.yaml"
	want, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(example)))
	if err != nil {
		t.Fatal(err)
	}
	p := readPage(t, "docs/runbooks.md")
	for _, b := range p.blocks {
		if b.info == "yaml" && b.text == string(want) {
			return
		}
	}
	t.Fatalf("docs/runbooks.md has no yaml block that is %s verbatim:\n%s", example, want)
}

// link is one link of a page, and the line it is on.
type link struct {
	target string
	line   int
}

// block is one fenced code block of a page.
type block struct {
	info string // the word after the opening fence: yaml, sh, …
	text string
}

// page is what the tests read of a Markdown file.
type page struct {
	lines   int
	anchors map[string]bool
	links   []link
	blocks  []block
}

// hasCodeLine says whether a line of a code block starts with prefix.
func (p *page) hasCodeLine(prefix string) bool {
	for _, b := range p.blocks {
		for _, l := range strings.Split(b.text, "\n") {
			if strings.HasPrefix(l, prefix) {
				return true
			}
		}
	}
	return false
}

// markdownPages lists README.md and every .md under docs/, relative to
// the repository's root, with slashes.
func markdownPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			pages = append(pages, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(pages[1:])
	return pages
}

var (
	headingRE = regexp.MustCompile(`^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	// linkRE finds inline links and images: [text](target) or
	// [text](target "title"); the text may hold brackets one level deep.
	linkRE        = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	headingLinkRE = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	schemeRE      = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// readPage reads a page of the repository (see parsePage).
func readPage(t *testing.T, name string) *page {
	t.Helper()
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := parsePage(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// parsePage reads a Markdown page: its headings' anchors (a repeated
// heading gets -1, -2, … as on GitHub), its links, also those whose text
// runs over two lines, and its fenced code blocks. Headings and links
// inside code do not count.
func parsePage(r io.Reader) (*page, error) {
	p := &page{anchors: map[string]bool{}}
	seen := map[string]int{}
	var fence string // the open fence, "" outside one
	var cur *block
	var para []string // the lines of the paragraph being read
	paraStart := 0    // the line it starts on
	flush := func() {
		text := withoutCode(strings.Join(para, "\n"))
		for _, m := range linkRE.FindAllStringSubmatchIndex(text, -1) {
			line := paraStart + strings.Count(text[:m[0]], "\n")
			p.links = append(p.links, link{target: text[m[2]:m[3]], line: line})
		}
		para = nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.lines++
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				fence = ""
				p.blocks = append(p.blocks, *cur)
				continue
			}
			cur.text += line + "\n"
			continue
		}
		if f := fenceOf(trimmed); f != "" {
			flush()
			fence = f
			cur = &block{info: strings.TrimSpace(strings.TrimLeft(trimmed, f[:1]))}
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			flush()
			a := Anchor(plainHeading(m[2]))
			if n := seen[a]; n > 0 {
				p.anchors[fmt.Sprintf("%s-%d", a, n)] = true
			} else {
				p.anchors[a] = true
			}
			seen[a]++
			para, paraStart = []string{line}, p.lines
			flush()
			continue
		}
		if para == nil {
			paraStart = p.lines
		}
		para = append(para, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if fence != "" {
		return nil, fmt.Errorf("a code fence %s is never closed", fence)
	}
	flush()
	return p, nil
}

// fenceOf returns the fence a line opens (``` or ~~~, or longer), or "".
func fenceOf(line string) string {
	for _, c := range []string{"`", "~"} {
		n := len(line) - len(strings.TrimLeft(line, c))
		if n >= 3 {
			return strings.Repeat(c, n)
		}
	}
	return ""
}

// plainHeading is a heading's text as GitHub makes its anchor from it:
// a link's text without its target.
func plainHeading(h string) string {
	return headingLinkRE.ReplaceAllString(h, "$1")
}

// withoutCode drops the code spans (`…`, or with more backticks) of a paragraph, where
// brackets and parentheses are text, not links; the line breaks inside
// one stay, so that a link after it keeps its line.
func withoutCode(text string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, "`")
		if i < 0 {
			return b.String() + text
		}
		n := len(text[i:]) - len(strings.TrimLeft(text[i:], "`"))
		tick := text[i : i+n]
		end := strings.Index(text[i+n:], tick)
		if end < 0 {
			return b.String() + text
		}
		b.WriteString(text[:i])
		b.WriteString(strings.Repeat("\n", strings.Count(text[i:i+n+end], "\n")))
		text = text[i+n+end+n:]
	}
}

// resolve says what is wrong with a link of page from, or "" when it
// resolves. Links with a scheme (https:, mailto:) are not followed.
func resolve(from, target string, docs map[string]*page) string {
	if target == "" {
		return "empty target"
	}
	if schemeRE.MatchString(target) {
		return ""
	}
	file, frag, _ := strings.Cut(target, "#")
	dest := from
	if file != "" {
		if strings.HasPrefix(file, "/") {
			return "an absolute path: write it relative to " + from
		}
		dest = path.Clean(path.Join(path.Dir(from), file))
		if strings.HasPrefix(dest, "../") {
			return "points outside the repository"
		}
		if pendingPages[dest] {
			return ""
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(dest))); err != nil {
			return fmt.Sprintf("%s does not exist", dest)
		}
	}
	if frag == "" {
		return ""
	}
	p, ok := docs[dest]
	if !ok {
		return fmt.Sprintf("#%s: anchors are checked in Markdown pages only, and %s is not one", frag, dest)
	}
	if !p.anchors[frag] {
		return fmt.Sprintf("%s has no heading whose anchor is #%s", dest, frag)
	}
	return ""
}

func TestAnchor(t *testing.T) {
	t.Parallel()
	tests := []struct{ heading, want string }{
		{"What it refuses, and why", "what-it-refuses-and-why"},
		{"Finding the primary, and `status`", "finding-the-primary-and-status"},
		{"Finishing another operator's run", "finishing-another-operators-run"},
		{"Hosts of their own: `switchover sandbox up --hosts`", "hosts-of-their-own-switchover-sandbox-up---hosts"},
		{"`pg.no_blocking_sessions`", "pgno_blocking_sessions"},
		{"6. promote — done", "6-promote--done"},
	}
	for _, tt := range tests {
		if got := Anchor(tt.heading); got != tt.want {
			t.Errorf("Anchor(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

func TestParsePage(t *testing.T) {
	t.Parallel()
	src := "# Title\n\n## Steps\n\nSee [a link over\ntwo lines](other.md#x), `[not](a-link.md)`.\n\n" +
		"````markdown\n## Steps\n[in code](nowhere.md)\n````\n\n## Steps\n\n![a picture](pic.svg)\n"
	p, err := parsePage(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	var anchors []string
	for a := range p.anchors {
		anchors = append(anchors, a)
	}
	sort.Strings(anchors)
	if got, want := strings.Join(anchors, " "), "steps steps-1 title"; got != want {
		t.Errorf("anchors = %q, want %q", got, want)
	}
	if got, want := fmt.Sprint(p.links), "[{other.md#x 5} {pic.svg 15}]"; got != want {
		t.Errorf("links = %s, want %s", got, want)
	}
	if len(p.blocks) != 1 || p.blocks[0].info != "markdown" || p.blocks[0].text != "## Steps\n[in code](nowhere.md)\n" {
		t.Errorf("blocks = %+v", p.blocks)
	}
}
