// Building the echo servers and the load generator.

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

func moduleDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m (run this from the benchmark module): %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "cmd", "echoserver")); err != nil {
		return "", fmt.Errorf("%s is not the benchmark module (run from benchmark/)", dir)
	}
	return dir, nil
}

func goBuild(modDir, out, pkg, tags string) error {
	args := []string{"build", "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = modDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 1500))
	}
	return nil
}

// family maps a server to the echoserver build that holds it: one binary per
// framework (-tags "solo solo_FAMILY"), so no framework's init-time
// background goroutines run inside another's server.
func family(impl string) string {
	switch {
	case strings.HasPrefix(impl, "net-") || impl == "net":
		return "net"
	case strings.HasPrefix(impl, "upstream"):
		return "upstream"
	case strings.HasPrefix(impl, "gnet"):
		return "gnet"
	case strings.HasPrefix(impl, "getty") && strings.HasSuffix(impl, "-nogw"):
		return "getty-nogw"
	case strings.HasPrefix(impl, "getty"):
		return "getty"
	}
	return impl
}

func serverBin(binDir, impl string) string {
	return filepath.Join(binDir, "echoserver-"+family(impl))
}

// build compiles loadgen and one echoserver per framework into binDir and
// returns the servers that are available.
func build(modDir, binDir, gettyMode string, wanted []string) (map[string]bool, string) {
	logf("building in %s", modDir)
	if err := goBuild(modDir, filepath.Join(binDir, "loadgen"), "./cmd/loadgen", ""); err != nil {
		fatalf("%v", err)
	}
	note := ""
	avail := map[string]bool{}
	done := map[string]bool{}
	for _, impl := range wanted {
		fam := family(impl)
		if done[fam] {
			continue
		}
		done[fam] = true
		tags := "solo solo_" + fam
		switch fam {
		case "getty":
			tags += " getty"
		case "getty-nogw":
			tags = "solo solo_getty getty getty_nogostwheel"
		}
		bin := serverBin(binDir, impl)
		if err := goBuild(modDir, bin, "./cmd/echoserver", tags); err != nil {
			if strings.HasPrefix(fam, "getty") && gettyMode != "on" {
				note = "the getty servers did not compile (-tags getty) and were skipped: " +
					strings.ReplaceAll(firstLines(err.Error(), 4), "\n", " | ")
				logf("%s", note)
				continue
			}
			fatalf("%v", err)
		}
		out, err := exec.Command(bin, "-list").Output()
		if err != nil {
			fatalf("%s -list: %v", bin, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				avail[f[0]] = true
			}
		}
	}
	return avail, note
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	const want = 1 << 18
	if rl.Cur >= want {
		return rl.Cur, nil
	}
	nl := syscall.Rlimit{Cur: want, Max: want}
	if rl.Max > want {
		nl.Max = rl.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		// Not root: at least use the whole hard limit.
		nl = syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err2 != nil {
			return rl.Cur, err
		}
		return rl.Max, nil
	}
	return nl.Cur, nil
}
