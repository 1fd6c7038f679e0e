package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// usageError marks bad command-line usage (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// numberLike matches positional arguments that start with a minus sign but
// are values, such as the coordinate -8.61,41.15.
var numberLike = regexp.MustCompile(`^-[0-9.]`)

// parseFlags parses args against fs, allowing flags before, between and
// after positional arguments (lastmile prepare IN -o OUT), then fills every
// flag left unset from the environment variable LASTMILE_<FLAG> (dashes
// become underscores). It returns the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(new(strings.Builder))
	var pos []string
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") || numberLike.MatchString(a) {
			pos = append(pos, a)
			args = args[1:]
			continue
		}
		// Parse exactly one flag (with its value when it takes one).
		name := strings.TrimLeft(a, "-")
		name, _, hasValue := strings.Cut(name, "=")
		n := 1
		if f := fs.Lookup(name); f != nil && !hasValue && !isBool(f) && len(args) > 1 {
			n = 2
		}
		if err := fs.Parse(args[:n]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usagef("usage: %s", flagUsage(fs))
			}
			return nil, usagef("%v; flags: %s", err, flagUsage(fs))
		}
		args = args[n:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "LASTMILE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = usagef("%s=%q: %v", env, v, e)
			}
		}
	})
	return pos, err
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func flagUsage(fs *flag.FlagSet) string {
	var parts []string
	fs.VisitAll(func(f *flag.Flag) {
		parts = append(parts, fmt.Sprintf("--%s (%s, default %q)", f.Name, f.Usage, f.DefValue))
	})
	return strings.Join(parts, ", ")
}
