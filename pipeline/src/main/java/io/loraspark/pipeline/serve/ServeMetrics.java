package io.loraspark.pipeline.serve;

import io.loraspark.train.cache.AdapterCacheStats;
import io.prometheus.client.CollectorRegistry;
import io.prometheus.client.Counter;
import io.prometheus.client.Gauge;
import io.prometheus.client.Histogram;
import io.prometheus.client.exporter.common.TextFormat;
import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.util.function.IntSupplier;
import java.util.function.Supplier;

/**
 * {@code GET /metrics} in Prometheus text format (the Prometheus Java client's registry and
 * writer): requests by endpoint and status, prompt and generated tokens, requests refused as full
 * or cancelled by a client that went away, in-flight and queued requests, rows per decode step,
 * step time, time to first token and time per output token, and the adapter cache's hits, misses,
 * evictions and bytes. One registry per server.
 */
final class ServeMetrics {
  private final CollectorRegistry registry = new CollectorRegistry();
  private final Counter requests =
      Counter.build("lora_requests_total", "HTTP requests answered, by endpoint and status")
          .labelNames("endpoint", "status")
          .register(registry);
  private final Counter promptTokens =
      Counter.build("lora_prompt_tokens_total", "prompt tokens of answered requests")
          .register(registry);
  private final Counter generatedTokens =
      Counter.build("lora_generated_tokens_total", "tokens generated").register(registry);
  private final Counter rejected =
      Counter.build("lora_rejected_total", "requests refused with 429 (server full)")
          .register(registry);
  private final Counter cancelled =
      Counter.build("lora_cancelled_total", "requests cancelled because their client went away")
          .register(registry);
  private final Histogram batchRows =
      Histogram.build("lora_batch_rows", "token rows per decode step")
          .buckets(1, 2, 4, 8, 16, 32, 64, 128, 256)
          .register(registry);
  private final Histogram stepSeconds =
      Histogram.build("lora_step_seconds", "time of one decode step")
          .exponentialBuckets(0.0001, 2, 16)
          .register(registry);
  private final Histogram firstToken =
      Histogram.build("lora_time_to_first_token_seconds", "request arrival to its first token")
          .exponentialBuckets(0.001, 2, 16)
          .register(registry);
  private final Histogram perToken =
      Histogram.build("lora_time_per_output_token_seconds", "mean time per token after the first")
          .exponentialBuckets(0.0001, 2, 16)
          .register(registry);
  private final Gauge inFlight =
      Gauge.build("lora_requests_in_flight", "requests queued or decoding").register(registry);
  private final Gauge queueDepth =
      Gauge.build("lora_queue_depth", "requests waiting for a decode slot").register(registry);
  private final Gauge cache =
      Gauge.build("lora_adapter_cache", "adapter cache counters (hits, misses, evictions, ...)")
          .labelNames("stat")
          .register(registry);
  private IntSupplier inFlightSource = () -> 0;
  private IntSupplier queueSource = () -> 0;
  private Supplier<AdapterCacheStats> cacheSource = () -> null;

  void sources(IntSupplier inFlight, IntSupplier queued, Supplier<AdapterCacheStats> cacheStats) {
    this.inFlightSource = inFlight;
    this.queueSource = queued;
    this.cacheSource = cacheStats;
  }

  void request(String endpoint, int status) {
    requests.labels(endpoint, Integer.toString(status)).inc();
  }

  void rejected() {
    rejected.inc();
  }

  void cancelled() {
    cancelled.inc();
  }

  void step(int rows, long nanos) {
    batchRows.observe(rows);
    stepSeconds.observe(nanos / 1e9);
  }

  /** A finished request's token counts and latencies. */
  void finished(int prompt, int generated, long firstTokenNanos, long totalNanos) {
    promptTokens.inc(prompt);
    generatedTokens.inc(generated);
    if (firstTokenNanos >= 0) {
      firstToken.observe(firstTokenNanos / 1e9);
      if (generated > 1) {
        perToken.observe((totalNanos - firstTokenNanos) / 1e9 / (generated - 1));
      }
    }
  }

  /** The text exposition of every metric, refreshed. */
  String scrape() {
    inFlight.set(inFlightSource.getAsInt());
    queueDepth.set(queueSource.getAsInt());
    AdapterCacheStats s = cacheSource.get();
    if (s != null) {
      cache.labels("hits").set(s.hits());
      cache.labels("misses").set(s.misses());
      cache.labels("loads").set(s.loads());
      cache.labels("evictions").set(s.evictions());
      cache.labels("unloads").set(s.unloads());
      cache.labels("entries").set(s.entries());
      cache.labels("bytes").set(s.bytesInUse());
      cache.labels("budget_bytes").set(s.budgetBytes());
    }
    StringWriter w = new StringWriter();
    try {
      TextFormat.write004(w, registry.metricFamilySamples());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return w.toString();
  }
}
