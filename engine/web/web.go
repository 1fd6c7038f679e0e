// Package web holds the pages people see (the recipient's tracking page,
// the driver's app) and their assets, embedded with go:embed so that the
// one binary serves them. It has no HTTP in it: the engine's handlers ask
// a Site for an Asset or to render a page into a writer.
//
// Assets (static/) are served at /static/{name} with a content hash in the
// query (Site.URL), so they can be cached for a year; each is kept
// gzip-compressed too. The bundled third-party files and their licences
// are listed in static/vendor/README.md and rebuilt by build-assets.sh.
//
// Pages are html/template: every value is escaped for its context, so text
// from users (instructions, messages, names) is always inert. They load
// nothing from elsewhere; CSP is the policy that says so.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"path"
	"slices"
	"strings"
)

//go:embed static templates
var files embed.FS

// CSP is the Content-Security-Policy of every page: everything from the
// engine itself, no inline script, no framing, and no inline style but
// the inlined stylesheets (inlineStyles), allowed by their hashes. It is
// derived once from the embedded files and never changes.
var CSP = "default-src 'self'; script-src 'self'; style-src 'self'" + styleHashes() + "; img-src 'self' data: blob:; connect-src 'self'; " +
	"worker-src 'self'; manifest-src 'self'; font-src 'self'; object-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// inlineStyles are the stylesheets a page may inline in a <style>
// element (template function "inline"): the tracking page's own, so that
// its first paint waits for the HTML only, not for another round trip.
var inlineStyles = []string{"track.css"}

// styleHashes is the CSP source list of inlineStyles: " 'sha256-…'" each.
func styleHashes() string {
	var b strings.Builder
	for _, name := range inlineStyles {
		body, err := files.ReadFile("static/" + name)
		if err != nil {
			panic("web: inline style " + name + ": " + err.Error()) // an embedded file: a build error
		}
		sum := sha256.Sum256(body)
		b.WriteString(" 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'")
	}
	return b.String()
}

// Asset is one static file: its bytes, gzip-compressed bytes (nil when
// compression does not pay), content type and content hash (the first 10
// hex digits of its SHA-256).
type Asset struct {
	Name        string
	ContentType string
	Body, Gzip  []byte
	Hash        string
}

// Site is the embedded assets and parsed page templates. It is immutable
// after New and safe for concurrent use.
type Site struct {
	assets map[string]*Asset
	pages  *template.Template
}

// New loads the embedded assets and templates.
func New() (*Site, error) {
	s := &Site{assets: map[string]*Asset{}}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".md") {
			return nil
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		sum := sha256.Sum256(body)
		a := &Asset{Name: name, Body: body, Hash: hex.EncodeToString(sum[:5]), ContentType: contentType(name)}
		if compressible(a.ContentType) && len(body) > 512 {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			if b.Len() < len(body)*9/10 {
				a.Gzip = b.Bytes()
			}
		}
		s.assets[name] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	funcs := template.FuncMap{
		"asset":  s.URL,
		"inline": s.inline,
	}
	s.pages, err = template.New("pages").Funcs(funcs).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	return s, nil
}

// contentType is the MIME type of an asset by its extension.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".webmanifest":
		return "application/manifest+json"
	case ".svg":
		return "image/svg+xml"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ct string) bool {
	return strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "svg")
}

// inline returns a stylesheet of inlineStyles for a <style> element,
// byte for byte (its hash is in CSP). Any other name panics while
// rendering, like an unknown asset.
func (s *Site) inline(name string) template.CSS {
	if !slices.Contains(inlineStyles, name) {
		panic("web: " + name + " is not an inline style")
	}
	return template.CSS(s.assets[name].Body)
}

// Asset returns the asset with that name (a path under static/).
func (s *Site) Asset(name string) (*Asset, bool) {
	a, ok := s.assets[name]
	return a, ok
}

// URL returns the address of an asset with its content hash, so that a
// changed file gets a new address and any version can be cached for good.
// An unknown name panics while rendering (a template bug, caught by the
// tests).
func (s *Site) URL(name string) (string, error) {
	a, ok := s.assets[name]
	if !ok {
		return "", fmt.Errorf("web: no asset %q", name)
	}
	return "/static/" + name + "?v=" + a.Hash, nil
}

// Render executes the page template name (a file of templates/) with data
// into w. It renders into a buffer first, so a failing template writes
// nothing.
func (s *Site) Render(w io.Writer, name string, data any) error {
	var b bytes.Buffer
	if err := s.pages.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	_, err := w.Write(b.Bytes())
	return err
}
