module github.com/lastmile/lastmile

go 1.26.0

require (
	github.com/paulmach/osm v0.8.0
	github.com/tidwall/rtree v1.10.0
	github.com/valyala/fasthttp v1.78.0
)

require (
	github.com/datadog/czlib v0.0.0-20160811164712-4bc9a24e37f2 // indirect
	github.com/google/go-cmp v0.6.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/molecule-man/go-brrr v1.3.1 // indirect
	github.com/paulmach/orb v0.1.3 // indirect
	github.com/paulmach/protoscan v0.2.1 // indirect
	github.com/tidwall/geoindex v1.7.0 // indirect
	github.com/uber/h3-go/v4 v4.1.0 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	gonum.org/v1/gonum v0.17.0 // indirect
	google.golang.org/protobuf v1.27.1 // indirect
)
