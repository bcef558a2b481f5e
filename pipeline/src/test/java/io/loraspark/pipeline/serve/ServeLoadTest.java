package io.loraspark.pipeline.serve;

import static io.loraspark.pipeline.serve.ServeClient.JSON;
import static io.loraspark.pipeline.serve.ServeClient.STORIES;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.decode.AdapterRegistry;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.precision.Precision;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code serve} under a bounded burst of concurrent streaming clients, loopback only: 8 adapters in
 * a cache that holds about 4, at most 16 requests decoding and 16 queued. Every request either
 * streams a well-formed answer or is refused with 429 + Retry-After; the cache never holds more
 * than its budget; a greedy answer does not depend on what else shared its batch; the heap stays
 * flat between the two halves of the run.
 */
class ServeLoadTest {
  static final int ADAPTERS = 8;
  static final int CLIENTS = 64;
  static final int PER_CLIENT_PER_HALF = 2; // 64 x 2 x 2 halves = 256 requests
  static final int MAX_TOKENS = 8;
  static final String[] PROMPTS = {
    "Once upon a time",
    "One day, a little girl",
    "The dog ran",
    "Tom had a red ball",
    "Lily went to the park",
    "The sun was",
    "A big bird",
    "Mom and dad",
    "There was a tree",
    "Ben liked to"
  };

  @TempDir static Path dir;
  static ServeClient serve;
  static long adapterBytes;
  static long budget;

  @BeforeAll
  static void start() {
    ModelWeights base = CheckpointLoader.load(STORIES);
    Path adapters = dir.resolve("adapters");
    for (int i = 0; i < ADAPTERS; i++) {
      // a rank-4 adapter on every projection with random B (so it changes the output)
      RandomAdapters.save(base, adapters.resolve("a" + i), 10 + i, 0.3);
    }
    adapterBytes = AdapterRegistry.load("a0", adapters.resolve("a0"), base).bytes();
    budget = adapterBytes * 9 / 2; // room for 4 of the 8
    serve =
        ServeClient.start(
            new ServeOptions(
                STORIES,
                adapters,
                null,
                Map.of(),
                List.of(),
                budget,
                64,
                16,
                16,
                null,
                Precision.FP32));
  }

  @AfterAll
  static void stop() {
    if (serve != null) {
      serve.close();
    }
  }

  record Job(String prompt, String adapter) {}

  /** What one request got back. */
  record Outcome(Job job, int status, String body, String retryAfter, String contentType) {}

  static HttpRequest streaming(Job job) {
    ObjectNode body =
        JSON.createObjectNode()
            .put("model", job.adapter())
            .put("prompt", job.prompt())
            .put("max_tokens", MAX_TOKENS)
            .put("temperature", 0)
            .put("stream", true);
    return serve.jsonPost("/v1/completions", body.toString());
  }

  static CompletableFuture<Outcome> send(Job job) {
    return serve
        .sendAsync(streaming(job))
        .thenApply(
            r ->
                new Outcome(
                    job,
                    r.statusCode(),
                    r.body(),
                    r.headers().firstValue("Retry-After").orElse(null),
                    r.headers().firstValue("Content-Type").orElse("")));
  }

  /** One half of the run: every client sends its requests one after another. */
  static List<Outcome> half(int halfIndex) {
    ConcurrentLinkedQueue<Outcome> done = new ConcurrentLinkedQueue<>();
    List<CompletableFuture<Void>> clients = new ArrayList<>();
    for (int c = 0; c < CLIENTS; c++) {
      CompletableFuture<Void> chain = CompletableFuture.completedFuture(null);
      for (int k = 0; k < PER_CLIENT_PER_HALF; k++) {
        int n = (halfIndex * PER_CLIENT_PER_HALF + k) * CLIENTS + c;
        Job job = new Job(PROMPTS[n % PROMPTS.length], "a" + (n * 3 + n / 7) % ADAPTERS);
        chain = chain.thenCompose(v -> send(job)).thenAccept(done::add);
      }
      clients.add(chain);
    }
    CompletableFuture.allOf(clients.toArray(CompletableFuture[]::new))
        .orTimeout(120, TimeUnit.SECONDS)
        .join();
    return new ArrayList<>(done);
  }

  /** The streamed text of a 200, checking the SSE framing and chunk JSON as it goes. */
  static String streamedText(Outcome o) throws Exception {
    List<String> events = ServeClient.events(o.body());
    assertThat(events.get(events.size() - 1)).as("last event").isEqualTo("data: [DONE]");
    StringBuilder text = new StringBuilder();
    int finishes = 0;
    for (int i = 0; i < events.size() - 1; i++) {
      assertThat(events.get(i)).startsWith("data: ");
      JsonNode chunk = JSON.readTree(events.get(i).substring("data: ".length()));
      assertThat(chunk.get("object").asText()).isEqualTo("text_completion");
      assertThat(chunk.get("model").asText()).isEqualTo(o.job().adapter());
      JsonNode choice = chunk.get("choices").get(0);
      text.append(choice.get("text").asText());
      if (!choice.get("finish_reason").isNull()) {
        finishes++;
        assertThat(i).as("finish_reason only on the last chunk").isEqualTo(events.size() - 2);
        assertThat(choice.get("finish_reason").asText()).isIn("stop", "length");
      }
    }
    assertThat(finishes).as("one chunk with a finish_reason").isEqualTo(1);
    return text.toString();
  }

  static Map<String, Double> cacheStats() throws Exception {
    String m = serve.send(serve.request("/metrics").build()).body();
    Map<String, Double> out = new LinkedHashMap<>();
    Matcher x =
        Pattern.compile("(?m)^lora_adapter_cache\\{stat=\"(\\w+)\",?\\} (\\S+)$").matcher(m);
    while (x.find()) {
      out.put(x.group(1), Double.parseDouble(x.group(2)));
    }
    Matcher g =
        Pattern.compile("(?m)^(lora_requests_in_flight|lora_queue_depth) (\\S+)$").matcher(m);
    while (g.find()) {
      out.put(g.group(1), Double.parseDouble(g.group(2)));
    }
    return out;
  }

  static long usedHeapAfterGc() throws InterruptedException {
    Runtime rt = Runtime.getRuntime();
    long used = Long.MAX_VALUE;
    for (int i = 0; i < 3; i++) {
      System.gc();
      Thread.sleep(100);
      used = Math.min(used, rt.totalMemory() - rt.freeMemory());
    }
    return used;
  }

  /**
   * {@code auto} with more candidates than the cache holds at once (8 adapters, room for ~4), on an
   * otherwise idle server: routing must still answer, never a 500.
   */
  @Test
  void routingOverMoreAdaptersThanTheCacheHolds() throws Exception {
    ObjectNode body =
        JSON.createObjectNode()
            .put("model", "auto")
            .put("prompt", "Once upon a time")
            .put("max_tokens", 2)
            .put("temperature", 0);
    HttpResponse<String> r = serve.post("/v1/completions", body.toString());
    assertThat(r.statusCode())
        .as("auto over 8 adapters, cache for ~4: %s", r.body())
        .isEqualTo(200);
    assertThat(JSON.readTree(r.body()).get("model").asText()).matches("a[0-7]");
  }

  @Test
  @Timeout(value = 240, unit = TimeUnit.SECONDS)
  void burstOfStreamingClients() throws Exception {
    AtomicLong maxCacheBytes = new AtomicLong();
    ConcurrentLinkedQueue<String> pollErrors = new ConcurrentLinkedQueue<>();
    ScheduledExecutorService poller = Executors.newSingleThreadScheduledExecutor();
    poller.scheduleWithFixedDelay(
        () -> {
          try {
            Double b = cacheStats().get("bytes");
            if (b != null) {
              maxCacheBytes.accumulateAndGet(b.longValue(), Math::max);
            }
          } catch (Exception e) {
            pollErrors.add(e.toString());
          }
        },
        0,
        25,
        TimeUnit.MILLISECONDS);
    List<Outcome> all = new ArrayList<>();
    long firstHalfHeap;
    long endHeap;
    try {
      all.addAll(half(0));
      firstHalfHeap = usedHeapAfterGc();
      all.addAll(half(1));
      endHeap = usedHeapAfterGc();
    } finally {
      poller.shutdown(); // lets a poll in flight finish (shutdownNow would interrupt it)
      poller.awaitTermination(30, TimeUnit.SECONDS);
    }
    assertThat(all).hasSize(2 * CLIENTS * PER_CLIENT_PER_HALF);

    SoftAssertions soft = new SoftAssertions();
    Map<Job, List<String>> texts = new LinkedHashMap<>();
    Map<Integer, Integer> byStatus = new LinkedHashMap<>();
    for (Outcome o : all) {
      byStatus.merge(o.status(), 1, Integer::sum);
      if (o.status() == 200) {
        soft.assertThat(o.contentType()).startsWith("text/event-stream");
        soft.assertThatCode(
                () -> texts.computeIfAbsent(o.job(), j -> new ArrayList<>()).add(streamedText(o)))
            .as("well-formed SSE for %s: %s", o.job(), o.body())
            .doesNotThrowAnyException();
      } else if (o.status() == 429) {
        soft.assertThat(o.retryAfter()).as("Retry-After on 429").isNotNull();
        soft.assertThatCode(
                () -> {
                  JsonNode e = JSON.readTree(o.body()).get("error");
                  assertThat(e.get("message").asText()).isNotBlank();
                  assertThat(e.get("type").asText()).isEqualTo("rate_limit_error");
                })
            .as("OpenAI error JSON on 429: %s", o.body())
            .doesNotThrowAnyException();
      } else {
        soft.fail("%s got %d (only 200 or 429 allowed): %s", o.job(), o.status(), o.body());
      }
    }
    soft.assertThat(byStatus.getOrDefault(200, 0))
        .as("completed requests (by status: %s)", byStatus)
        .isGreaterThanOrEqualTo(CLIENTS);

    // the cache: never above its budget, and it did evict (8 adapters, room for ~4)
    Map<String, Double> stats = cacheStats();
    soft.assertThat(pollErrors).as("/metrics answered while loaded").isEmpty();
    soft.assertThat(stats.get("budget_bytes")).isEqualTo((double) budget);
    soft.assertThat(maxCacheBytes.get())
        .as("largest lora_adapter_cache{stat=bytes} seen (adapter %d bytes)", adapterBytes)
        .isLessThanOrEqualTo(budget);
    soft.assertThat(stats.get("bytes")).isLessThanOrEqualTo((double) budget);
    soft.assertThat(stats.get("evictions")).as("evictions").isGreaterThan(0);
    soft.assertThat(stats.get("lora_requests_in_flight")).as("nothing left in flight").isZero();
    soft.assertThat(stats.get("lora_queue_depth")).as("nothing left queued").isZero();

    // batch independence: each greedy text equals the same prompt + adapter sent alone
    for (Map.Entry<Job, List<String>> e : texts.entrySet()) {
      Outcome alone = send(e.getKey()).get(60, TimeUnit.SECONDS);
      soft.assertThat(alone.status()).as("%s alone: %s", e.getKey(), alone.body()).isEqualTo(200);
      if (alone.status() == 200) {
        String want = streamedText(alone);
        soft.assertThat(e.getValue())
            .as("%s under load vs alone", e.getKey())
            .allSatisfy(t -> assertThat(t).isEqualTo(want));
      }
    }

    // the heap: flat between the midpoint and the end (generous slack)
    soft.assertThat(endHeap - firstHalfHeap)
        .as("heap growth, %d MB -> %d MB", firstHalfHeap >> 20, endHeap >> 20)
        .isLessThan(64L << 20);
    soft.assertAll();
  }
}
