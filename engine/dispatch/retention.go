package dispatch

import (
	"context"
	"time"

	"github.com/lastmile/lastmile/engine/store"
)

// EraseExpired erases the personal data (recipient, address,
// instructions, tracking token) of the shipments whose last attempt ended
// more than retention ago, keeping the anonymous figures analytics needs
// (statuses, times, windows, locations, events). It returns how many it
// erased.
func (s *Service) EraseExpired(ctx context.Context, retention time.Duration) (int64, error) {
	now := s.cfg.Now()
	var n int64
	_, err := s.st.Tx(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.EraseExpired(now.Add(-retention).Unix(), now.Unix())
		return err
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.log.Info("personal data erased after retention", "shipments", n, "retention", retention.String())
	}
	return n, nil
}
