package io.loraspark.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Debian's headless Chromium with one page, driven over the DevTools protocol through the JDK's own
 * {@link WebSocket}: enough to check what a reader of {@code report.html} would see (which elements
 * render and at what size), which network requests the page made, and to take a screenshot. No
 * browser-automation library: the protocol calls used here are few and stable.
 *
 * <p>Lifecycle: {@link #start} → {@link #navigate} → {@link #evaluate} / {@link #screenshot} →
 * {@link #close}, which kills the browser and every process it started. The browser resolves no
 * host names (only local files and data: URIs load), so a page that needs the network shows it as
 * broken images and as entries in {@link #requestedUrls}.
 */
final class HeadlessChromium implements AutoCloseable {
  static final Path BINARY = Path.of("/usr/bin/chromium");

  /** Per protocol call and for the browser to start; generous for a loaded 2-core machine. */
  private static final Duration TIMEOUT = Duration.ofSeconds(60);

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Process process;
  private final Path log;
  private final WebSocket socket;
  private final AtomicInteger lastId = new AtomicInteger();
  private final Map<Integer, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
  private final List<String> requested = new CopyOnWriteArrayList<>();
  private volatile CompletableFuture<Void> loaded = new CompletableFuture<>();

  private HeadlessChromium(Process process, Path log, URI page) throws IOException {
    this.process = process;
    this.log = log;
    this.socket =
        await(
            HttpClient.newHttpClient()
                .newWebSocketBuilder()
                .buildAsync(page, new Listener())
                .toCompletableFuture(),
            "connect to " + page);
    // the browser sends page and network events only once these domains are enabled
    call("Page.enable", JSON.createObjectNode());
    call("Network.enable", JSON.createObjectNode());
  }

  /**
   * Starts the browser with a fresh profile and opens one blank page.
   *
   * @param workDir an empty directory for the profile ({@code profile/}) and the browser's own log
   *     ({@code chromium.log})
   * @param width viewport width in CSS pixels
   * @param height viewport height in CSS pixels
   * @return the connected browser; close it
   * @throws IllegalStateException with the end of the browser's log when it does not come up
   */
  static HeadlessChromium start(Path workDir, int width, int height)
      throws IOException, InterruptedException {
    Path profile = Files.createDirectories(workDir.resolve("profile"));
    Path log = workDir.resolve("chromium.log");
    Process p =
        new ProcessBuilder(
                BINARY.toString(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                "--hide-scrollbars",
                "--window-size=" + width + "," + height,
                "--user-data-dir=" + profile,
                "--remote-debugging-port=0",
                "about:blank")
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    try {
      int port = awaitPort(p, profile.resolve("DevToolsActivePort"), log);
      return new HeadlessChromium(p, log, newPage(port));
    } catch (IOException | RuntimeException | InterruptedException e) {
      kill(p);
      throw e;
    }
  }

  /**
   * Loads a URL and waits for its load event (all images fetched and decoded or failed).
   *
   * @throws IllegalStateException when the page cannot be loaded (Chromium's error text)
   */
  void navigate(URI url) throws IOException {
    loaded = new CompletableFuture<>();
    JsonNode r = call("Page.navigate", JSON.createObjectNode().put("url", url.toString()));
    if (r.hasNonNull("errorText")) {
      throw new IllegalStateException(
          "Chromium cannot load " + url + ": " + r.get("errorText").asText());
    }
    await(loaded, "load event of " + url);
  }

  /**
   * Evaluates a JavaScript expression in the page, awaiting it if it is a promise.
   *
   * @return its value as JSON (a JavaScript string comes back as a text node)
   * @throws IllegalStateException with the JavaScript exception when the expression throws
   */
  JsonNode evaluate(String expression) throws IOException {
    ObjectNode params =
        JSON.createObjectNode()
            .put("expression", expression)
            .put("returnByValue", true)
            .put("awaitPromise", true);
    JsonNode r = call("Runtime.evaluate", params);
    if (r.has("exceptionDetails")) {
      throw new IllegalStateException(
          "JavaScript failed in the page: " + r.get("exceptionDetails").toPrettyString());
    }
    return r.path("result").path("value");
  }

  /** A PNG of the whole page (not only the viewport), at one device pixel per CSS pixel. */
  byte[] screenshot() throws IOException {
    JsonNode size = call("Page.getLayoutMetrics", JSON.createObjectNode()).get("cssContentSize");
    ObjectNode clip =
        JSON.createObjectNode()
            .put("x", 0)
            .put("y", 0)
            .put("width", size.get("width").asDouble())
            .put("height", size.get("height").asDouble())
            .put("scale", 1);
    ObjectNode params = JSON.createObjectNode().put("format", "png");
    params.put("captureBeyondViewport", true).set("clip", clip);
    return Base64.getDecoder().decode(call("Page.captureScreenshot", params).get("data").asText());
  }

  /**
   * Every URL the page requested since {@link #start} (the page itself included), cut to 120
   * characters: data: URIs hold whole images.
   */
  List<String> requestedUrls() {
    return List.copyOf(requested);
  }

  /** Closes the connection and kills the browser with all its child processes. */
  @Override
  public void close() {
    socket.abort();
    kill(process);
  }

  private JsonNode call(String method, ObjectNode params) throws IOException {
    int id = lastId.incrementAndGet();
    CompletableFuture<JsonNode> result = new CompletableFuture<>();
    pending.put(id, result);
    ObjectNode msg = JSON.createObjectNode().put("id", id).put("method", method);
    msg.set("params", params);
    await(socket.sendText(JSON.writeValueAsString(msg), true).toCompletableFuture(), method);
    return await(result, method);
  }

  /** Routes a complete protocol message: a reply to its call, an event to what waits for it. */
  private void dispatch(String text) {
    JsonNode msg;
    try {
      msg = JSON.readTree(text);
    } catch (IOException e) {
      pending.values().forEach(f -> f.completeExceptionally(e));
      return;
    }
    if (msg.has("id")) {
      CompletableFuture<JsonNode> f = pending.remove(msg.get("id").asInt());
      if (f != null && msg.has("error")) {
        f.completeExceptionally(new IllegalStateException("DevTools error: " + msg.get("error")));
      } else if (f != null) {
        f.complete(msg.path("result"));
      }
      return;
    }
    switch (msg.path("method").asText()) {
      case "Page.loadEventFired" -> loaded.complete(null);
      case "Network.requestWillBeSent" ->
          requested.add(shorten(msg.path("params").path("request").path("url").asText()));
      default -> {}
    }
  }

  /** Collects a message's fragments, then dispatches it. */
  private final class Listener implements WebSocket.Listener {
    private final StringBuilder partial = new StringBuilder();

    @Override
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
      partial.append(data);
      if (last) {
        dispatch(partial.toString());
        partial.setLength(0);
      }
      ws.request(1);
      return null;
    }

    @Override
    public void onError(WebSocket ws, Throwable error) {
      pending.values().forEach(f -> f.completeExceptionally(error));
      loaded.completeExceptionally(error);
    }
  }

  private static String shorten(String url) {
    return url.length() <= 120 ? url : url.substring(0, 120) + "…";
  }

  /** The port Chromium chose, from the file it writes once DevTools listens. */
  private static int awaitPort(Process p, Path portFile, Path log)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      if (Files.isRegularFile(portFile)) {
        List<String> lines = Files.readAllLines(portFile, StandardCharsets.UTF_8);
        if (lines.size() >= 2) {
          return Integer.parseInt(lines.get(0).strip());
        }
      }
      if (!p.isAlive()) {
        throw new IllegalStateException(
            BINARY
                + " exited with code "
                + p.exitValue()
                + " before DevTools listened:\n"
                + tail(log));
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException(
        BINARY + " did not write " + portFile + " within " + TIMEOUT + ":\n" + tail(log));
  }

  /** Opens a blank page through DevTools' HTTP endpoint and returns its WebSocket address. */
  private static URI newPage(int port) throws IOException, InterruptedException {
    HttpRequest req =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/new?about:blank"))
            .PUT(HttpRequest.BodyPublishers.noBody())
            .timeout(TIMEOUT)
            .build();
    HttpResponse<String> r =
        HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IllegalStateException(
          "DevTools /json/new answered " + r.statusCode() + ": " + r.body());
    }
    return URI.create(JSON.readTree(r.body()).get("webSocketDebuggerUrl").asText());
  }

  private <T> T await(CompletableFuture<T> f, String what) throws IOException {
    try {
      return f.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      throw new IllegalStateException(
          "DevTools: no answer to " + what + " within " + TIMEOUT + "; browser log:\n" + tail(log),
          e);
    } catch (ExecutionException e) {
      throw new IllegalStateException("DevTools: " + what + " failed: " + e.getCause(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while waiting for " + what, e);
    }
  }

  /** Kills the process and its descendants (renderer, GPU and zygote processes), by handle. */
  private static void kill(Process p) {
    List<ProcessHandle> tree = p.descendants().toList();
    tree.forEach(ProcessHandle::destroy);
    p.destroy();
    try {
      if (!p.waitFor(10, TimeUnit.SECONDS)) {
        p.destroyForcibly();
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    tree.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
  }

  /** The last lines of the browser's log, for error messages. */
  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    } catch (IOException e) {
      return "(no log at " + log + ": " + e.getMessage() + ")";
    }
  }
}
