package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lastmile/lastmile/engine/notify/message"
	"github.com/lastmile/lastmile/engine/store"
)

// templatesCheck is how often the stored templates' version is read: a
// template set through one replica is used by the others within it.
const templatesCheck = 5 * time.Second

// templateSet holds the templates in use: the built-in ones, the
// folder's overrides (TemplatesDir) and the stored ones (the API), built
// again when the stored ones change.
type templateSet struct {
	mu      sync.Mutex
	cur     *message.Templates
	version int64 // of the stored templates built in (-1: none yet)
	checked time.Time
}

// templates returns the templates to render with, reloading them when
// the stored ones changed. On a failure it keeps the last good set.
func (s *Service) templates(ctx context.Context) *message.Templates {
	r := s.cfg.Recipients
	ts := &r.tpl
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if time.Since(ts.checked) < templatesCheck && ts.cur != nil {
		return ts.cur
	}
	ts.checked = time.Now()
	v, err := s.st.TemplatesVersion(ctx)
	if err != nil || v == ts.version {
		if ts.cur == nil {
			ts.cur = r.cfg.Templates
		}
		return ts.cur
	}
	stored, v, err := s.st.Templates(ctx)
	if err == nil {
		m := make(map[string][]byte, len(stored))
		for _, t := range stored {
			m[t.Name] = []byte(t.Body)
		}
		var t *message.Templates
		if t, err = message.LoadWith(r.cfg.TemplatesDir, m); err == nil {
			ts.cur, ts.version = t, v
			return t
		}
	}
	s.log.Error("reloading message templates; the previous ones stay in use", "err", err)
	if ts.cur == nil {
		ts.cur = r.cfg.Templates
	}
	return ts.cur
}

// TemplateInfo describes a stored template.
type TemplateInfo struct {
	Name    string `json:"name"`
	Bytes   int    `json:"bytes"`
	Updated int64  `json:"updated"`
}

// PutTemplate checks a template override (name "LANG/EVENT.KIND.tmpl",
// at most message.MaxOverride bytes, parsing and rendering the sample
// inputs) and stores it; every replica uses it within 5 s.
func (s *Service) PutTemplate(ctx context.Context, language, file string, text []byte) (TemplateInfo, error) {
	name := language + "/" + file
	if len(text) > message.MaxOverride {
		return TemplateInfo{}, errorf("TooBig", "template %s is %d bytes; the limit is %d bytes", clip(name, 80), len(text), message.MaxOverride)
	}
	if err := message.CheckOverride(name, text); err != nil {
		return TemplateInfo{}, errorf("InvalidValue", "%s", err.Error())
	}
	t := s.cfg.Now().Unix()
	if err := s.st.PutTemplate(ctx, name, string(text), t); err != nil {
		return TemplateInfo{}, err
	}
	s.invalidateTemplates()
	return TemplateInfo{Name: name, Bytes: len(text), Updated: t}, nil
}

// DeleteTemplate removes a stored template: the folder's or the built-in
// one is used again.
func (s *Service) DeleteTemplate(ctx context.Context, language, file string) error {
	name := language + "/" + file
	err := s.st.DeleteTemplate(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return errorf("NotFound", "template %q: none stored", clip(name, 80))
	}
	if err == nil {
		s.invalidateTemplates()
	}
	return err
}

// Templates lists the stored templates.
func (s *Service) Templates(ctx context.Context) ([]TemplateInfo, error) {
	ts, _, err := s.st.Templates(ctx)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	out := make([]TemplateInfo, len(ts))
	for i, t := range ts {
		out[i] = TemplateInfo{Name: t.Name, Bytes: len(t.Body), Updated: t.Updated}
	}
	return out, nil
}

// invalidateTemplates makes the next render read the stored templates.
func (s *Service) invalidateTemplates() {
	if r := s.cfg.Recipients; r != nil {
		r.tpl.mu.Lock()
		r.tpl.checked = time.Time{}
		r.tpl.mu.Unlock()
	}
}
