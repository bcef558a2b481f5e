package io.loraspark.pipeline.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.testing.InProcessCli;
import io.loraspark.train.model.precision.Precision;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * A {@code serve} instance the tests start on a free loopback port, and a JDK HTTP client for it;
 * {@link #close()} stops the server.
 */
final class ServeClient implements AutoCloseable {
  static final Path STORIES = Path.of("../models/stories260K");
  static final ObjectMapper JSON = new ObjectMapper();

  final LoraServer server;
  final int port;

  /** {@code http://127.0.0.1:<port>}, no trailing slash. */
  final String url;

  final HttpClient http;

  private ServeClient(LoraServer server, HttpClient.Version version) {
    this.server = server;
    try {
      this.port = server.start("127.0.0.1", 0);
    } catch (RuntimeException e) {
      server.close();
      throw e;
    }
    this.url = "http://127.0.0.1:" + port;
    this.http =
        HttpClient.newBuilder().version(version).connectTimeout(Duration.ofSeconds(5)).build();
  }

  /** Builds the server from {@code options} and starts it; the client speaks HTTP/1.1. */
  static ServeClient start(ServeOptions options) {
    return start(options, HttpClient.Version.HTTP_1_1);
  }

  /** Builds the server from {@code options} and starts it; the client prefers {@code version}. */
  static ServeClient start(ServeOptions options, HttpClient.Version version) {
    return new ServeClient(options.build(), version);
  }

  /**
   * stories260K with the adapters in {@code adapters} and {@code root} open to {@code
   * load_lora_adapter}: a 64 MB adapter cache, 64 rows a decode step, 8 requests decoding and 8
   * queued.
   */
  static ServeOptions onStories(Path adapters, Path root) {
    return new ServeOptions(
        STORIES,
        adapters,
        null,
        Map.of(),
        List.of(root),
        64L << 20,
        64,
        8,
        8,
        null,
        Precision.FP32);
  }

  /** A request to {@code path} on this server, to finish as the caller needs. */
  HttpRequest.Builder request(String path) {
    return HttpRequest.newBuilder(URI.create(url + path));
  }

  /** A JSON POST of {@code body} to {@code path}, 60 s timeout. */
  HttpRequest jsonPost(String path, String body) {
    return request(path)
        .timeout(Duration.ofSeconds(60))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(body))
        .build();
  }

  HttpResponse<String> send(HttpRequest request) throws IOException, InterruptedException {
    return http.send(request, HttpResponse.BodyHandlers.ofString());
  }

  CompletableFuture<HttpResponse<String>> sendAsync(HttpRequest request) {
    return http.sendAsync(request, HttpResponse.BodyHandlers.ofString());
  }

  HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
    return send(jsonPost(path, body));
  }

  /** A POST of raw bytes to {@code path}: no Content-Type, no timeout. */
  HttpResponse<String> postBytes(String path, byte[] body)
      throws IOException, InterruptedException {
    return send(request(path).POST(HttpRequest.BodyPublishers.ofByteArray(body)).build());
  }

  /** A GET of {@code path}, 30 s timeout. */
  HttpResponse<String> get(String path) throws IOException, InterruptedException {
    return send(request(path).timeout(Duration.ofSeconds(30)).build());
  }

  /** The ids {@code GET /v1/models} lists, in its order. */
  List<String> modelIds() throws IOException, InterruptedException {
    List<String> ids = new ArrayList<>();
    JSON.readTree(get("/v1/models").body()).get("data").forEach(m -> ids.add(m.get("id").asText()));
    return ids;
  }

  @Override
  public void close() {
    server.close();
  }

  /**
   * Asserts {@code status} with OpenAI's error JSON: a message without a stack trace and, if {@code
   * param} is not null, that {@code param}.
   *
   * @return the {@code error} object
   */
  /**
   * The events of a server-sent-events body, without the keep-alive comments (lines starting with
   * ':', which SSE clients ignore); the body must end with a blank line.
   */
  static List<String> events(String body) {
    assertThat(body).as("an SSE body ends with a blank line").endsWith("\n\n");
    return java.util.Arrays.stream(body.substring(0, body.length() - 2).split("\n\n"))
        .filter(e -> !e.startsWith(":"))
        .toList();
  }

  static JsonNode assertError(HttpResponse<String> r, int status, String param) throws IOException {
    assertThat(r.statusCode()).as("status, body %s", r.body()).isEqualTo(status);
    JsonNode e = JSON.readTree(r.body()).get("error");
    assertThat(e).as("OpenAI error JSON: %s", r.body()).isNotNull();
    assertThat(e.get("message").asText()).isNotBlank().doesNotContain("\tat ");
    if (param != null) {
      assertThat(e.get("param").asText()).as(r.body()).isEqualTo(param);
    }
    return e;
  }

  /**
   * {@code generate}'s completion of {@code prompt} under {@code adapter} (the base model alone
   * when null), greedy, in-process through the CLI.
   */
  static String generate(String prompt, Path adapter, int maxTokens) throws IOException {
    List<String> args =
        new ArrayList<>(
            List.of(
                "generate",
                "--model",
                STORIES.toString(),
                "--prompt",
                prompt,
                "--json",
                "--max-new-tokens",
                Integer.toString(maxTokens)));
    if (adapter != null) {
      args.addAll(List.of("--adapter", adapter.toString()));
    }
    String out = InProcessCli.run(args.toArray(String[]::new));
    return JSON.readTree(out).get("completion").asText();
  }
}
