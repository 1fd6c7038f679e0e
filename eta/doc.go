// Package eta estimates travel times and arrival times on the road network
// of package graph.
//
// It has four parts, each a plain struct of slices:
//
//   - Profile (profile.go): a historical speed profile, one travel-time
//     multiplier on the free-flow Edge.Duration per edge and quarter hour of
//     the day, separately for weekdays and weekends, fitted robustly from
//     observed traversal times and shrunk toward the aggregate of the edge's
//     H3 cell and road class, then toward the aggregate of the road class,
//     when the edge has few samples (a hierarchical, empirical-Bayes style
//     partial pooling, Gelman & Hill, "Data Analysis Using Regression and
//     Multilevel/Hierarchical Models", 2007, ch. 12).
//   - Traffic (traffic.go): live state. Speed observations per edge or per
//     OSM way are screened (plausibility, then a median/MAD outlier test,
//     Iglewicz & Hoaglin, "How to Detect and Handle Outliers", 1993) and
//     aggregated per edge and per (H3 cell, road class), so that unobserved
//     roads of the same class nearby borrow the cell's congestion (and,
//     more weakly, that of the same class in the adjacent cells). Each
//     level is shrunk toward the next: edge -> (cell, class) -> same class
//     in the adjacent cells -> profile. The live ratio to the profile
//     decays linearly back to the profile over a configurable horizon.
//   - Predict (predict.go): per-stop arrival and departure times of a planned
//     route, walking every edge with the multiplier for the time the vehicle
//     enters it, with service times, waiting for time windows and breaks.
//   - Calibrator (calibrate.go): learns the distribution of log(actual /
//     predicted) time to arrival per horizon bucket and turns a point
//     prediction into a bias-corrected median with a P10/P90 interval.
//
// All multipliers are factors on the free-flow duration: 1 is free flow, 2
// is twice as slow. Internally they are kept as natural logarithms so that
// averaging and shrinking are symmetric in speeding up and slowing down.
package eta
