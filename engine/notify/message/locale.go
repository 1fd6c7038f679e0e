package message

import (
	"fmt"
	"strings"
	"time"
)

// locale holds the words of one template language that the templates get
// ready-made (dates and failure reasons), so that a template never has to
// decline a weekday or pick a preposition itself.
type locale struct {
	weekdays [7]string  // Sunday first, as time.Weekday
	months   [12]string // January first
	// long formats a date in full ("Tuesday 4 March").
	long func(l *locale, t time.Time) string
	// on is the long date as an adverbial ("on Tuesday 4 March").
	on func(l *locale, t time.Time) string
	// short is a compact date for SMS ("Tue 4 Mar", "4/3").
	short func(l *locale, t time.Time) string
	// reasons are the failure reasons as clauses that follow a colon
	// ("we could not deliver it: nobody was at home"), by code.
	reasons map[string]string
}

// defaultLang is the language of last resort.
const defaultLang = "en"

// langs are the template languages, each with a complete set of default
// templates.
var langs = []string{"en", "pt", "es", "fr"}

// dayMonth is "4/3": day and month numbers, as pt, es and fr write them.
func dayMonth(_ *locale, t time.Time) string { return fmt.Sprintf("%d/%d", t.Day(), int(t.Month())) }

// locales are the words of each template language. It is read-only.
var locales = map[string]*locale{
	"en": {
		weekdays: [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		months:   [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		long: func(l *locale, t time.Time) string {
			return fmt.Sprintf("%s %d %s", l.weekdays[t.Weekday()], t.Day(), l.months[t.Month()-1])
		},
		on: func(l *locale, t time.Time) string { return "on " + l.long(l, t) },
		short: func(l *locale, t time.Time) string {
			return fmt.Sprintf("%s %d %s", l.weekdays[t.Weekday()][:3], t.Day(), l.months[t.Month()-1][:3])
		},
		reasons: map[string]string{
			"not_home":          "nobody was at home",
			"refused":           "the delivery was refused",
			"address_not_found": "the address could not be found",
			"access":            "there was no access to the address",
			"damaged":           "the parcel was damaged",
			"other":             "there was an unexpected problem",
		},
	},
	"pt": {
		weekdays: [7]string{"domingo", "segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado"},
		months:   [12]string{"janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro", "novembro", "dezembro"},
		long: func(l *locale, t time.Time) string {
			return fmt.Sprintf("%s, %d de %s", l.weekdays[t.Weekday()], t.Day(), l.months[t.Month()-1])
		},
		on: func(l *locale, t time.Time) string {
			// Saturday and Sunday are masculine, the -feira days feminine.
			if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
				return "no " + l.long(l, t)
			}
			return "na " + l.long(l, t)
		},
		short: dayMonth,
		reasons: map[string]string{
			"not_home":          "não havia ninguém em casa",
			"refused":           "a entrega foi recusada",
			"address_not_found": "o endereço não foi encontrado",
			"access":            "não havia acesso ao local",
			"damaged":           "a encomenda estava danificada",
			"other":             "houve um problema inesperado",
		},
	},
	"es": {
		weekdays: [7]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"},
		months:   [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
		long: func(l *locale, t time.Time) string {
			return fmt.Sprintf("%s %d de %s", l.weekdays[t.Weekday()], t.Day(), l.months[t.Month()-1])
		},
		on:    func(l *locale, t time.Time) string { return "el " + l.long(l, t) },
		short: dayMonth,
		reasons: map[string]string{
			"not_home":          "no había nadie en casa",
			"refused":           "se rechazó la entrega",
			"address_not_found": "no se encontró la dirección",
			"access":            "no fue posible acceder al domicilio",
			"damaged":           "el paquete estaba dañado",
			"other":             "hubo un problema inesperado",
		},
	},
	"fr": {
		weekdays: [7]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"},
		months:   [12]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
		long: func(l *locale, t time.Time) string {
			day := fmt.Sprint(t.Day())
			if t.Day() == 1 {
				day = "1er"
			}
			return fmt.Sprintf("%s %s %s", l.weekdays[t.Weekday()], day, l.months[t.Month()-1])
		},
		on:    func(l *locale, t time.Time) string { return "le " + l.long(l, t) },
		short: dayMonth,
		reasons: map[string]string{
			"not_home":          "le destinataire était absent",
			"refused":           "la livraison a été refusée",
			"address_not_found": "l’adresse est introuvable",
			"access":            "l’accès à l’adresse était impossible",
			"damaged":           "le colis était endommagé",
			"other":             "un problème imprévu est survenu",
		},
	},
}

// resolveLang maps a recipient's language tag to a template language:
// "pt-BR" → "pt" when there is no "pt-br", and "en" for anything unknown
// (including "").
func resolveLang(tag string) string {
	tag = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	for tag != "" {
		if _, ok := locales[tag]; ok {
			return tag
		}
		i := strings.LastIndexByte(tag, '-')
		if i < 0 {
			break
		}
		tag = tag[:i]
	}
	return defaultLang
}

// reasonText is the phrase for a failure reason code; an unknown or empty
// code reads as "other".
func (l *locale) reasonText(code string) string {
	if s, ok := l.reasons[code]; ok {
		return s
	}
	return l.reasons["other"]
}

// Lang returns the language of the built-in words for a recipient's
// language tag ("pt-BR" gives "pt"; an unknown one "en"), for pages that
// speak the recipient's language like the messages do.
func Lang(tag string) string { return resolveLang(tag) }

// WindowIn returns [lo, hi] (Unix seconds) rounded outward to 5 minutes
// in loc, in the words of lang (see Lang), SameDay when it starts on
// now's local day.
func WindowIn(lang string, loc *time.Location, now time.Time, lo, hi int64) *Window {
	if loc == nil {
		loc = time.UTC
	}
	return window(locales[resolveLang(lang)], loc, now.In(loc), lo, hi)
}

// ReasonText returns a failure reason code as a clause in lang ("nobody
// was at home").
func ReasonText(lang, code string) string { return locales[resolveLang(lang)].reasonText(code) }
