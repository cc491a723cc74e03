// Command reproduction writes docs/reproduction.md from the runs it
// cites: scripts/reproduction/manifest.toml lists per claim the run
// folder, its config, the commands that made it, and which tests of
// RUN/report/report.json to quote and how; template.md holds the prose.
// Every number comes from a report.json or a sessions.json.
//
//	go run ./scripts/reproduction [--allow-missing] [--out docs/reproduction.md]
//
// A run folder without report/report.json is an error naming the folder
// and the commands that make it; --allow-missing writes a "not run" row
// instead. A cited test id the report lacks is an error listing the ids
// it has. Run it from the repository root (make reproduction).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	opt := Options{}
	flag.StringVar(&opt.Root, "root", ".", "repository root: run folders are relative to it")
	flag.StringVar(&opt.Manifest, "manifest", "scripts/reproduction/manifest.toml", "the manifest")
	flag.StringVar(&opt.Template, "template", "scripts/reproduction/template.md", "the prose around the table")
	flag.BoolVar(&opt.AllowMissing, "allow-missing", false, `write a "not run" row for a run folder without report/report.json instead of failing`)
	flag.StringVar(&opt.ImgDir, "img", "docs/img/reproduction", `folder the panels' figures are copied to ("" leaves them out)`)
	flag.StringVar(&opt.ImgLink, "img-link", "img/reproduction", "the figures' folder as the page links it")
	out := flag.String("out", "docs/reproduction.md", "the page to write (- for stdout)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "reproduction: unexpected arguments %v\n", flag.Args())
		os.Exit(2)
	}
	b, err := Generate(opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "reproduction: %v\n", err)
		os.Exit(1)
	}
	if *out == "-" {
		os.Stdout.Write(b)
		return
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		fmt.Fprintf(os.Stderr, "reproduction: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
}
