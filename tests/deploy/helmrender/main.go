// helmrender renders a Helm chart the way `helm template` does, for the
// tests of deploy/helm/ringcast on machines without Helm (Debian 12 and npm
// do not have it).  The template engine is the one Helm uses: Go's
// text/template with the sprig function library (Debian's
// golang-github-masterminds-sprig-dev), plus Helm's own include, tpl,
// required, toYaml and fromYaml; values come from values.yaml, then each -f
// file, then each --set a.b=c, merged as Helm merges them.  Not covered:
// subcharts, hooks, lookup, .Capabilities, .Files.
//
//	helmrender [-f values.yaml]... [--set key=value]... [--name R] [--namespace N] CHART
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "helmrender: "+format+"\n", a...)
	os.Exit(1)
}

func readYAML(path string) map[string]interface{} {
	data, err := os.ReadFile(path)
	if err != nil {
		die("%v", err)
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		die("%s: %v", path, err)
	}
	return out
}

// merge copies src over dst; maps merge key by key, anything else replaces.
func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			merge(dm, sm)
		} else {
			dst[k] = v
		}
	}
}

// setValue applies --set a.b.c=v (v typed as Helm does: int, bool, null, string).
func setValue(values map[string]interface{}, expr string) {
	eq := strings.IndexByte(expr, '=')
	if eq < 1 {
		die("--set %q: want key=value", expr)
	}
	path, raw := strings.Split(expr[:eq], "."), expr[eq+1:]
	var v interface{} = raw
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		v = n
	} else if raw == "true" || raw == "false" {
		v = raw == "true"
	} else if raw == "null" {
		v = nil
	}
	m := values
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func main() {
	var files, sets multi
	name, namespace := "release-name", "default"
	args := os.Args[1:]
	var chart string
	for i := 0; i < len(args); i++ {
		next := func() string {
			if i+1 >= len(args) {
				die("%s needs a value", args[i])
			}
			i++
			return args[i]
		}
		switch args[i] {
		case "-f", "--values":
			files.Set(next())
		case "--set":
			sets.Set(next())
		case "--name":
			name = next()
		case "--namespace", "-n":
			namespace = next()
		default:
			if chart != "" || strings.HasPrefix(args[i], "-") {
				die("usage: helmrender [-f FILE]... [--set K=V]... [--name R] [--namespace N] CHART")
			}
			chart = args[i]
		}
	}
	if chart == "" {
		die("no chart folder given")
	}
	meta := readYAML(filepath.Join(chart, "Chart.yaml"))
	values := readYAML(filepath.Join(chart, "values.yaml"))
	for _, f := range files {
		merge(values, readYAML(f))
	}
	for _, s := range sets {
		setValue(values, s)
	}
	data := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": name, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Chart":   map[string]interface{}{"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]},
	}

	root := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || fmt.Sprint(v) == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	funcs["include"] = func(tname string, d interface{}) (string, error) {
		var buf bytes.Buffer
		err := root.ExecuteTemplate(&buf, tname, d)
		return buf.String(), err
	}
	funcs["tpl"] = func(text string, d interface{}) (string, error) {
		t, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		err = t.Execute(&buf, d)
		return buf.String(), err
	}
	root.Funcs(funcs)

	paths, _ := filepath.Glob(filepath.Join(chart, "templates", "*"))
	sort.Strings(paths)
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			die("%v", err)
		}
		if _, err := root.New(filepath.Base(p)).Parse(string(text)); err != nil {
			die("%v", err)
		}
	}
	chartName := fmt.Sprint(meta["name"])
	for _, p := range paths {
		base := filepath.Base(p)
		if strings.HasPrefix(base, "_") || !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")) {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, base, data); err != nil {
			die("%v", err)
		}
		if strings.TrimSpace(buf.String()) == "" {
			continue
		}
		fmt.Printf("---\n# Source: %s/templates/%s\n%s\n", chartName, base, strings.TrimSpace(buf.String()))
	}
}
