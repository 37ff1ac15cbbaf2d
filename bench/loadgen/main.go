// loadgen drives the Kubernetes API server as hard as a closed loop of N clients can, for the
// registry's throughput benchmarks (python -m bench throughput).
//
// It is compiled so that the client is not the bottleneck on a small machine: it reports the CPU
// it used beside the figures. Requests go over HTTP/2 (as client-go's do) or HTTP/1.1 keep-alive.
// "{n}" in the path or body becomes a request's sequence number (from -start), "{n12}" the same
// zero-padded to 12 digits (for digests), "{m}" that number modulo -modulo, so creates get unique
// names and reads spread over a set of objects.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type result struct {
	Requests    int            `json:"requests"`
	Errors      int            `json:"errors"`
	Statuses    map[string]int `json:"statuses"`
	FirstErrors []string       `json:"first_errors"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"per_second"`
	P50         float64        `json:"p50_ms"`
	P95         float64        `json:"p95_ms"`
	P99         float64        `json:"p99_ms"`
	CPUSeconds  float64        `json:"client_cpu_seconds"`
	CPUShare    float64        `json:"client_cpu_share"`
}

func fill(template string, n, modulo int64) string {
	if !strings.Contains(template, "{") {
		return template
	}
	out := strings.ReplaceAll(template, "{n12}", fmt.Sprintf("%012d", n))
	out = strings.ReplaceAll(out, "{n}", strconv.FormatInt(n, 10))
	if modulo > 0 {
		out = strings.ReplaceAll(out, "{m}", strconv.FormatInt(n%modulo, 10))
	}
	return out
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p/100*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i].Microseconds()) / 1000
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}

func client(caFile, certFile, keyFile string, http1 bool, connections int) (*http.Client, error) {
	config := &tls.Config{}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", caFile)
		}
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	transport := &http.Transport{TLSClientConfig: config, MaxIdleConnsPerHost: connections,
		MaxConnsPerHost: connections, ForceAttemptHTTP2: !http1}
	if http1 {
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: transport, Timeout: 60 * time.Second}, nil
}

func main() {
	server := flag.String("server", "", "the API server's URL, e.g. https://127.0.0.1:6443")
	caFile := flag.String("ca", "", "CA bundle to verify the server with")
	certFile := flag.String("cert", "", "client certificate")
	keyFile := flag.String("key", "", "client key")
	token := flag.String("token", "", "bearer token (instead of a client certificate)")
	method := flag.String("method", "GET", "GET or POST")
	path := flag.String("path", "", "request path; {n} and {m} are filled in")
	bodyFile := flag.String("body", "", "request body file for POST; {n} and {m} are filled in")
	concurrency := flag.Int("concurrency", 8, "clients in the closed loop")
	duration := flag.Duration("duration", 10*time.Second, "how long to measure")
	warmup := flag.Duration("warmup", time.Second, "how long to send before measuring")
	start := flag.Int64("start", 0, "the first sequence number")
	modulo := flag.Int64("modulo", 0, "what {m} is taken modulo")
	http1 := flag.Bool("http1", false, "HTTP/1.1 keep-alive instead of HTTP/2")
	limit := flag.Int64("requests", 0, "stop after this many requests (0: run for -duration)")
	flag.Parse()
	if *server == "" || *path == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -server and -path are required")
		os.Exit(2)
	}
	body := ""
	if *bodyFile != "" {
		raw, err := os.ReadFile(*bodyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		body = string(raw)
	}
	httpClient, err := client(*caFile, *certFile, *keyFile, *http1, *concurrency)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}

	var sequence atomic.Int64
	sequence.Store(*start)
	var mu sync.Mutex
	res := result{Statuses: map[string]int{}, FirstErrors: []string{}}
	var latencies []time.Duration
	began := time.Now()
	measureFrom := began.Add(*warmup)
	stop := measureFrom.Add(*duration)
	cpuAtStart := 0.0
	var cpuOnce sync.Once

	send := func(n int64) (int, string, time.Duration, error) {
		var reader io.Reader
		if *method != "GET" {
			reader = bytes.NewReader([]byte(fill(body, n, *modulo)))
		}
		request, err := http.NewRequest(*method, *server+fill(*path, n, *modulo), reader)
		if err != nil {
			return 0, "", 0, err
		}
		request.Header.Set("Accept", "application/json")
		if reader != nil {
			request.Header.Set("Content-Type", "application/json")
		}
		if *token != "" {
			request.Header.Set("Authorization", "Bearer "+*token)
		}
		sent := time.Now()
		reply, err := httpClient.Do(request)
		if err != nil {
			return 0, "", time.Since(sent), err
		}
		text, err := io.ReadAll(reply.Body)
		reply.Body.Close()
		elapsed := time.Since(sent)
		if err != nil {
			return reply.StatusCode, "", elapsed, err
		}
		if reply.StatusCode >= 300 {
			return reply.StatusCode, string(text), elapsed, nil
		}
		return reply.StatusCode, "", elapsed, nil
	}

	var wg sync.WaitGroup
	for worker := 0; worker < *concurrency; worker++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for {
				now := time.Now()
				if now.After(stop) {
					break
				}
				n := sequence.Add(1) - 1
				if *limit > 0 && n-*start >= *limit {
					break
				}
				measuring := !now.Before(measureFrom)
				if measuring {
					cpuOnce.Do(func() { cpuAtStart = cpuSeconds() })
				}
				status, text, elapsed, err := send(n)
				if !measuring {
					continue
				}
				mu.Lock()
				res.Requests++
				if err != nil || status >= 300 {
					res.Errors++
					detail := text
					if err != nil {
						detail = err.Error()
					}
					if len(res.FirstErrors) < 3 {
						res.FirstErrors = append(res.FirstErrors, fmt.Sprintf("HTTP %d: %.300s", status, detail))
					}
				}
				res.Statuses[strconv.Itoa(status)]++
				mu.Unlock()
				if err == nil && status < 300 {
					local = append(local, elapsed)
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	ended := time.Now()
	res.Seconds = ended.Sub(measureFrom).Seconds()
	res.CPUSeconds = cpuSeconds() - cpuAtStart
	res.CPUShare = res.CPUSeconds / res.Seconds
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	res.PerSecond = float64(len(latencies)) / res.Seconds
	res.P50, res.P95, res.P99 = percentile(latencies, 50), percentile(latencies, 95), percentile(latencies, 99)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
