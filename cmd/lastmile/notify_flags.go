package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/lastmile/lastmile/engine/notify"
	"github.com/lastmile/lastmile/engine/notify/mail"
	"github.com/lastmile/lastmile/engine/notify/message"
	"github.com/lastmile/lastmile/engine/notify/sms"
)

// notifyFlags are serve's flags for recipient notifications (e-mail
// through an SMTP relay, SMS through a Twilio-shaped gateway). Passwords
// come from the environment, not the command line (ps shows arguments).
type notifyFlags struct {
	publicURL, carrier, templates, night  *string
	smtpHost, smtpUser, smtpFrom, smtpTLS *string
	smtpFromName                          *string
	smtpPort                              *int
	smsURL, smsAccount, smsFrom           *string
}

func addNotifyFlags(fs *flag.FlagSet) *notifyFlags {
	return &notifyFlags{
		publicURL:    fs.String("public-url", "", "the engine's address as recipients reach it (https://track.example.com): the base of tracking and unsubscribe links in e-mails and SMS"),
		carrier:      fs.String("carrier", "lastmile", "the carrier's name in e-mails and SMS"),
		templates:    fs.String("templates", "", "folder of message templates overriding the built-in ones (LANG/EVENT.{subject,text,html,sms}.tmpl)"),
		night:        fs.String("sms-night", "21-8", "recipients' local hours without SMS except delivered and failed (START-END; 0-0: none)"),
		smtpHost:     fs.String("smtp-host", "", "SMTP relay for e-mail to recipients (none: no e-mail); password in LASTMILE_SMTP_PASSWORD"),
		smtpPort:     fs.Int("smtp-port", 587, "SMTP relay port"),
		smtpUser:     fs.String("smtp-user", "", "SMTP user name (AUTH); empty: no authentication"),
		smtpFrom:     fs.String("smtp-from", "", "sender address of e-mails"),
		smtpFromName: fs.String("smtp-from-name", "", "sender display name (default: --carrier)"),
		smtpTLS:      fs.String("smtp-tls", "starttls", "starttls (required), starttls-opportunistic, tls (implicit) or none"),
		smsURL:       fs.String("sms-url", "", "SMS gateway base URL with Twilio's Messages API (https://api.twilio.com); none: no SMS; token in LASTMILE_SMS_TOKEN"),
		smsAccount:   fs.String("sms-account", "", "SMS gateway account SID"),
		smsFrom:      fs.String("sms-from", "", "SMS sender number or name"),
	}
}

// recipients builds the recipient channels, nil when neither e-mail nor
// SMS is configured.
func (f *notifyFlags) recipients(log *slog.Logger) (*notify.Recipients, error) {
	if *f.smtpHost == "" && *f.smsURL == "" {
		return nil, nil
	}
	if *f.publicURL == "" {
		return nil, usagef("--public-url is needed for the links in e-mails and SMS")
	}
	tpl, err := message.Load(*f.templates)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	cfg := notify.RecipientsConfig{Templates: tpl, TemplatesDir: *f.templates, PublicURL: *f.publicURL, Carrier: *f.carrier}
	a, b, ok := strings.Cut(*f.night, "-")
	na, errA := strconv.Atoi(a)
	nb, errB := strconv.Atoi(b)
	if !ok || errA != nil || errB != nil {
		return nil, usagef("--sms-night %q: want START-END hours, e.g. 21-8", *f.night)
	}
	cfg.NightStart, cfg.NightEnd = na, nb
	if na == nb {
		cfg.NightStart, cfg.NightEnd = 1, 1 // equal hours: no night (0-0 would mean the defaults)
	}
	if *f.smtpHost != "" {
		mode, err := mail.ParseTLSMode(*f.smtpTLS)
		if err != nil {
			return nil, usagef("--smtp-tls: %v", err)
		}
		name := *f.smtpFromName
		if name == "" {
			name = *f.carrier
		}
		if cfg.Mail, err = mail.New(mail.Config{Host: *f.smtpHost, Port: *f.smtpPort, Username: *f.smtpUser,
			Password: os.Getenv("LASTMILE_SMTP_PASSWORD"), From: *f.smtpFrom, FromName: name, TLS: mode, Logger: log}); err != nil {
			return nil, err
		}
	}
	if *f.smsURL != "" {
		if cfg.SMS, err = sms.New(sms.Config{BaseURL: *f.smsURL, AccountSID: *f.smsAccount, AuthToken: os.Getenv("LASTMILE_SMS_TOKEN"),
			From: *f.smsFrom}); err != nil {
			return nil, err
		}
	}
	return notify.NewRecipients(cfg)
}
