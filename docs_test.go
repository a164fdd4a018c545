package getty_test

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/getty-go/getty/internal/race"
)

// TestDocSnippets type-checks every ```go block of README.md and docs/*.md
// against the package as it is, so the docs cannot drift from the code.
//
// A block that starts with "package" is checked as a file. Any other block
// is a fragment: declarations (types, funcs), or else statements (checked
// as a function body). A fragment may use the standard packages and getty
// without importing them, and the names in docStubs (a session s, a
// package pkg, ...) without declaring them; unused variables and imports
// are fine in a fragment.
func TestDocSnippets(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks getty and its dependencies from source")
	}
	t.Parallel() // CPU-bound, asserts no timing: overlaps the other parallel tests
	files, _ := filepath.Glob("docs/*.md")
	files = append([]string{"README.md"}, files...)
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	imp := docImporter(t, fset) // one cache for all blocks
	n := 0
	for _, md := range files {
		for _, b := range goBlocks(t, md) {
			n++
			name := fmt.Sprintf("%s:%d", md, b.line)
			t.Run(name, func(t *testing.T) {
				for _, e := range checkSnippet(fset, imp, filepath.Join(root, md), b) {
					t.Errorf("%s", e)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no ```go blocks found")
	}
}

// docImporter imports from the compiler's export data, which `go list
// -export` finds in the build cache (the test build and go vet leave it
// there) or builds. The source importer type-checks getty and the standard
// library from source instead: 45 s of the test under -race. It is the
// fallback when the go command is not at hand.
func docImporter(t *testing.T, fset *token.FileSet) types.Importer {
	exports := map[string]string{}
	list := func(paths ...string) error {
		args := []string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}
		if race.Enabled {
			args = append(args, "-race") // the variant this test binary's build cached
		}
		out, err := exec.Command("go", append(args, paths...)...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				err = fmt.Errorf("%w: %s", err, ee.Stderr)
			}
			return fmt.Errorf("go list -export %v: %w", paths, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if p, file, ok := strings.Cut(line, "\t"); ok && file != "" {
				exports[p] = file
			}
		}
		return nil
	}
	// Export data is read by this binary's go/importer, so it must come from
	// the same Go release (the go in PATH may differ from the toolchain that
	// built the test, e.g. under GOTOOLCHAIN).
	if v, err := exec.Command("go", "env", "GOVERSION").Output(); err != nil || strings.TrimSpace(string(v)) != runtime.Version() {
		t.Logf("go command is %q (err %v), this test was built by %s; type-checking imports from source", strings.TrimSpace(string(v)), err, runtime.Version())
		return importer.ForCompiler(fset, "source", nil)
	}
	var paths []string
	for _, p := range docImports {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	if err := list(paths...); err != nil {
		t.Logf("%v; type-checking imports from source", err)
		return importer.ForCompiler(fset, "source", nil)
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		if _, ok := exports[path]; !ok { // a package a file block imports itself
			if err := list(path); err != nil {
				return nil, err
			}
		}
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %q", path)
		}
		return os.Open(file)
	})
}

type docBlock struct {
	line int // of the block's first line of code, 1-based
	src  string
}

func goBlocks(t *testing.T, md string) []docBlock {
	f, err := os.Open(md)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []docBlock
	var cur *docBlock
	var body strings.Builder
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		switch {
		case cur == nil && trimmed == "```go":
			cur = &docBlock{line: line + 1}
			body.Reset()
		case cur != nil && trimmed == "```":
			cur.src = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(text)
			body.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// docImports are the packages a fragment may use without importing them.
var docImports = map[string]string{
	"getty":   "github.com/getty-go/getty",
	"bytes":   "bytes",
	"binary":  "encoding/binary",
	"context": "context",
	"errors":  "errors",
	"fmt":     "fmt",
	"http":    "net/http",
	"io":      "io",
	"log":     "log",
	"net":     "net",
	"os":      "os",
	"signal":  "os/signal",
	"slog":    "log/slog",
	"strings": "strings",
	"sync":    "sync",
	"syscall": "syscall",
	"time":    "time",
}

// docStubs are the names a fragment may use without declaring them.
var docStubs = map[string]string{
	"s":          "var s getty.Session",
	"pkg":        "var pkg any",
	"ping":       "var ping any",
	"newSession": "var newSession getty.NewSessionCallback",
	"srv":        "var srv getty.Server",
	"handler":    "type handler struct{ getty.BaseListener }",
	"echo":       "type echo struct{ getty.BaseListener }",
}

func checkSnippet(fset *token.FileSet, imp types.Importer, md string, b docBlock) []string {
	const pkgLine = "package snippet\n"
	isFile := strings.HasPrefix(strings.TrimSpace(stripComments(b.src)), "package ")
	var (
		file   *ast.File
		err    error
		prefix string // lines put before the block's source
		suffix string
	)
	if isFile {
		file, err = parser.ParseFile(fset, md+".go", b.src, parser.ParseComments)
	} else {
		prefix = pkgLine
		if file, err = parser.ParseFile(token.NewFileSet(), "", prefix+b.src, 0); err != nil {
			prefix, suffix = pkgLine+"func _() {\n", "}\n"
			file, err = parser.ParseFile(token.NewFileSet(), "", prefix+b.src+suffix, 0)
		}
	}
	if err != nil {
		return []string{fmt.Sprintf("%s:%d: does not parse: %v", filepath.Base(md), b.line, err)}
	}
	files := []*ast.File{file}
	if !isFile {
		// Add the imports and stubs the fragment leans on, then parse it
		// for real with positions that map back to the Markdown.
		imported := map[string]bool{}
		for _, is := range file.Imports {
			p := strings.Trim(is.Path.Value, `"`)
			name := p[strings.LastIndex(p, "/")+1:]
			if is.Name != nil {
				name = is.Name.Name
			}
			imported[name] = true
		}
		var imports, stubs []string
		seen := map[string]bool{}
		for _, id := range file.Unresolved {
			if seen[id.Name] {
				continue
			}
			seen[id.Name] = true
			if p, ok := docImports[id.Name]; ok && !imported[id.Name] {
				imports = append(imports, fmt.Sprintf("import %s %q\n", id.Name, p))
			}
			if d, ok := docStubs[id.Name]; ok {
				stubs = append(stubs, d+"\n")
			}
		}
		sort.Strings(imports)
		sort.Strings(stubs)
		// The imports share the block's line: line numbers stay right.
		head := strings.TrimSuffix(prefix, "\n")
		head = strings.Replace(head, pkgLine[:len(pkgLine)-1], "package snippet; "+strings.ReplaceAll(strings.Join(imports, ""), "\n", "; "), 1)
		src := head + "\n" + b.src + suffix
		// Shift so that the block's first line is line b.line.
		src = strings.Repeat("\n", max(0, b.line-2-strings.Count(head, "\n"))) + src
		file, err = parser.ParseFile(fset, md, src, 0)
		if err != nil {
			return []string{fmt.Sprintf("%s:%d: does not parse with its imports: %v", filepath.Base(md), b.line, err)}
		}
		files = []*ast.File{file}
		if len(stubs) > 0 {
			stubSrc := "package snippet\nimport getty \"github.com/getty-go/getty\"\nvar _ getty.Session\n" + strings.Join(stubs, "")
			sf, err := parser.ParseFile(fset, filepath.Join(filepath.Dir(md), "docstubs.go"), stubSrc, 0)
			if err != nil {
				return []string{fmt.Sprintf("stubs: %v", err)}
			}
			files = append(files, sf)
		}
	}
	var errs []string
	conf := types.Config{
		Importer: imp,
		Error: func(err error) {
			te, _ := err.(types.Error)
			if !isFile && te.Soft && (strings.Contains(te.Msg, "declared and not used") || strings.Contains(te.Msg, "imported and not used")) {
				return
			}
			errs = append(errs, err.Error())
		},
	}
	_, _ = conf.Check("snippet", fset, files, nil)
	return errs
}

// stripComments drops leading // comment lines, so a file block may start
// with a comment.
func stripComments(src string) string {
	for {
		src = strings.TrimLeft(src, " \t\n")
		if !strings.HasPrefix(src, "//") {
			return src
		}
		i := strings.IndexByte(src, '\n')
		if i < 0 {
			return ""
		}
		src = src[i+1:]
	}
}
