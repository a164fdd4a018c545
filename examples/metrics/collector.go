package main

import (
	"github.com/prometheus/client_golang/prometheus"

	getty "github.com/getty-go/getty"
)

// gettyCollector is a prometheus.Collector that reads a getty endpoint's
// counters (getty.EndpointStatsOf) at each scrape. getty counts anyway, so
// exporting costs nothing between scrapes: no hook on the hot path.
type gettyCollector struct {
	ep getty.EndPoint

	sessionsOpen, sessionsOpened         *prometheus.Desc
	readBytes, writeBytes                *prometheus.Desc
	readPkgs, writePkgs                  *prometheus.Desc
	drops, sessionErrors, callbackPanics *prometheus.Desc
}

var _ prometheus.Collector = (*gettyCollector)(nil)

// newGettyCollector exports ep's counters with the labels
// endpoint=name and type=ep.EndPointType() (TCP_SERVER, TCP_CLIENT, ...).
// Register one per endpoint; the labels keep them apart.
func newGettyCollector(name string, ep getty.EndPoint) *gettyCollector {
	labels := prometheus.Labels{"endpoint": name, "type": ep.EndPointType().String()}
	desc := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("getty", "", metric), help, nil, labels)
	}
	return &gettyCollector{
		ep:             ep,
		sessionsOpen:   desc("sessions_open", "Sessions open now."),
		sessionsOpened: desc("sessions_opened_total", "Sessions ever opened (OnOpen accepted them)."),
		readBytes:      desc("read_bytes_total", "Bytes read from connections."),
		writeBytes:     desc("write_bytes_total", "Bytes handed to the kernel."),
		readPkgs:       desc("read_packages_total", "Packages decoded by the Reader."),
		writePkgs:      desc("write_packages_total", "Packages written."),
		drops:          desc("drops_total", "Datagrams dropped (UDP: truncated, oversize or undecodable)."),
		sessionErrors:  desc("session_errors_total", "Sessions that ended with an error (OnError)."),
		callbackPanics: desc("panics_total", "Panics recovered from user callbacks."),
	}
}

// Describe implements prometheus.Collector.
func (c *gettyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.sessionsOpen, c.sessionsOpened, c.readBytes, c.writeBytes,
		c.readPkgs, c.writePkgs, c.drops, c.sessionErrors, c.callbackPanics,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one snapshot per scrape.
func (c *gettyCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := getty.EndpointStatsOf(c.ep)
	if !ok { // an EndPoint that getty did not make has no counters
		return
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(c.sessionsOpen, float64(st.SessionsOpen))
	counter(c.sessionsOpened, st.SessionsTotal)
	counter(c.readBytes, st.ReadBytes)
	counter(c.writeBytes, st.WriteBytes)
	counter(c.readPkgs, st.ReadPkgs)
	counter(c.writePkgs, st.WritePkgs)
	counter(c.drops, st.Drops)
	counter(c.sessionErrors, st.Errors)
	counter(c.callbackPanics, st.Panics)
}
