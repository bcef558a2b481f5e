package io.loraspark.pipeline.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.NetworkConnector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP side of {@code serve} on an embedded Javalin (Jetty) server: OpenAI's {@code
 * /v1/completions}, {@code /v1/chat/completions} and {@code /v1/models}, vLLM's {@code
 * /v1/load_lora_adapter} and {@code /v1/unload_lora_adapter}, {@code /health} and {@code /metrics}.
 * Every refusal is OpenAI's error JSON with its 4xx status; an unexpected failure is a 500 with a
 * one-line message, never a stack trace, and the server keeps serving.
 */
public final class LoraServer implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(LoraServer.class);
  private static final JsonNodeFactory J = JsonNodeFactory.instance;

  /** The largest request body accepted (413 above). */
  public static final long MAX_BODY_BYTES = 4L << 20;

  private final ServerState s;
  private final Completions completions;
  private final Javalin app;
  private final long created = System.currentTimeMillis() / 1000;
  private volatile boolean draining;
  private final AtomicInteger answering = new AtomicInteger(); // handlers running

  LoraServer(ServerState state) {
    this.s = state;
    this.completions = new Completions(state);
    this.app =
        Javalin.create(
            cfg -> {
              cfg.showJavalinBanner = false;
              cfg.http.maxRequestSize = MAX_BODY_BYTES;
            });
    app.before(this::admit);
    app.post(
        "/v1/completions", ctx -> answer(ctx, "completions", () -> completions.handle(ctx, false)));
    app.post(
        "/v1/chat/completions",
        ctx -> answer(ctx, "chat_completions", () -> completions.handle(ctx, true)));
    app.get("/v1/models", ctx -> answer(ctx, "models", () -> ctx.json(models())));
    app.post("/v1/load_lora_adapter", ctx -> answer(ctx, "load_lora_adapter", () -> load(ctx)));
    app.post(
        "/v1/unload_lora_adapter", ctx -> answer(ctx, "unload_lora_adapter", () -> unload(ctx)));
    app.get(
        "/health", ctx -> ctx.status(draining ? 503 : 200).result(draining ? "draining" : "ok"));
    app.get(
        "/metrics",
        ctx ->
            ctx.contentType("text/plain; version=0.0.4; charset=utf-8")
                .result(s.metrics().scrape()));
    app.error(
        404,
        ctx -> {
          if (ctx.attribute("answered") == null) {
            error(
                ctx,
                new ApiError(
                    404,
                    "invalid_request_error",
                    null,
                    "not_found",
                    "no route " + ctx.method() + " " + ctx.path()));
          }
        });
    app.exception(
        HttpResponseException.class,
        (e, ctx) ->
            error(
                ctx,
                new ApiError(e.getStatus(), "invalid_request_error", null, null, e.getMessage())));
  }

  /** Starts listening; returns the bound port (useful with port 0). */
  public int start(String host, int port) {
    app.start(host, port);
    return app.port();
  }

  /**
   * SIGTERM's drain, as vLLM's server (uvicorn) does it: stops accepting connections (a new one is
   * refused), answers any further request on an open connection with 503 in OpenAI's error JSON
   * ({@code /health} too), and waits up to {@code millis} for the requests in flight to be answered
   * to their end. Then {@link #close} stops the server.
   *
   * @return whether every request in flight was answered in time
   */
  public boolean drain(long millis) {
    draining = true;
    for (Connector c : app.jettyServer().server().getConnectors()) {
      if (c instanceof NetworkConnector n) {
        n.shutdown(); // closes the listening socket; open connections close after their request
      }
    }
    long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    boolean decoded = s.decode().drain(millis);
    while (answering.get() > 0 && System.nanoTime() < end) {
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(10));
    }
    return decoded && answering.get() == 0;
  }

  @Override
  public void close() {
    app.stop();
    s.decode().close();
  }

  private interface Body {
    void run() throws IOException;
  }

  /** Runs a handler, turning any failure into OpenAI's error JSON and counting the answer. */
  private void answer(Context ctx, String endpoint, Body body) {
    ctx.attribute("answered", true);
    answering.incrementAndGet();
    try {
      if (draining) { // counted first, then checked: a drain that began since admit waits for us
        throw new HttpResponseException(503, "the server is shutting down");
      }
      body.run();
    } catch (ApiError e) {
      error(ctx, e);
    } catch (IllegalArgumentException e) {
      error(ctx, ApiError.invalid(null, e.getMessage()));
    } catch (HttpResponseException e) {
      error(ctx, new ApiError(e.getStatus(), "invalid_request_error", null, null, e.getMessage()));
    } catch (Exception e) {
      LOG.warn("{} failed: {}", endpoint, e.toString());
      error(ctx, ApiError.internal(e));
    } finally {
      answering.decrementAndGet();
    }
    Integer answered = ctx.attribute(CompletionResponse.ANSWERED_STATUS);
    s.metrics().request(endpoint, answered != null ? answered : ctx.statusCode());
  }

  private void error(Context ctx, ApiError e) {
    if (e.status == 429) {
      ctx.header("Retry-After", "1");
    }
    ctx.status(e.status).json(e.body());
  }

  /** API key (when set) on every /v1 route; 503 while draining. */
  private void admit(Context ctx) {
    if (!ctx.path().startsWith("/v1/")) {
      return;
    }
    if (draining) {
      throw new HttpResponseException(503, "the server is shutting down");
    }
    if (s.apiKey() != null) {
      String auth = ctx.header("Authorization");
      String want = "Bearer " + s.apiKey();
      if (auth == null
          || !MessageDigest.isEqual(
              auth.getBytes(StandardCharsets.UTF_8), want.getBytes(StandardCharsets.UTF_8))) {
        ctx.attribute("answered", true);
        ApiError e = ApiError.unauthorized();
        ctx.status(401).json(e.body());
        ctx.skipRemainingHandlers();
      }
    }
  }

  private ObjectNode models() {
    ObjectNode o = J.objectNode().put("object", "list");
    ArrayNode data = o.putArray("data");
    data.addObject()
        .put("id", s.baseName())
        .put("object", "model")
        .put("created", created)
        .put("owned_by", "lora-spark")
        .putNull("parent");
    for (String name : s.catalog().names()) {
      data.addObject()
          .put("id", name)
          .put("object", "model")
          .put("created", created)
          .put("owned_by", "lora-spark")
          .put("parent", s.baseName());
    }
    if (s.routerName() != null) {
      data.addObject()
          .put("id", s.routerName())
          .put("object", "model")
          .put("created", created)
          .put("owned_by", "lora-spark")
          .put("parent", s.baseName());
    }
    return o;
  }

  private void load(Context ctx) throws IOException {
    JsonNode body = jsonBody(ctx);
    String name = field(body, "lora_name");
    String path = field(body, "lora_path");
    if (name.equals(s.baseName()) || name.equals(s.routerName())) {
      throw ApiError.invalid("lora_name", "'" + name + "' is reserved");
    }
    try {
      s.catalog().load(name, path);
    } catch (IllegalArgumentException e) {
      throw ApiError.invalid("lora_path", e.getMessage());
    } catch (IllegalStateException e) {
      throw ApiError.invalid("lora_name", e.getMessage());
    } catch (java.io.UncheckedIOException e) {
      throw ApiError.invalid("lora_path", e.getMessage());
    }
    ctx.result("Success: LoRA adapter '" + name + "' added successfully.");
  }

  private void unload(Context ctx) throws IOException {
    String name = field(jsonBody(ctx), "lora_name");
    if (!s.catalog().unload(name)) {
      throw new ApiError(
          404,
          "invalid_request_error",
          "lora_name",
          "model_not_found",
          "no adapter named '" + name + "' is loaded");
    }
    ctx.result("Success: LoRA adapter '" + name + "' removed successfully.");
  }

  /**
   * The request body, at most {@link #MAX_BODY_BYTES}: read from the stream with that bound, so a
   * chunked body (no Content-Length, which Javalin's own limit checks) cannot exhaust memory.
   *
   * @throws ApiError 413 past the limit
   */
  static byte[] body(Context ctx) throws IOException {
    byte[] b = ctx.req().getInputStream().readNBytes((int) MAX_BODY_BYTES + 1);
    if (b.length > MAX_BODY_BYTES) {
      throw new ApiError(
          413,
          "invalid_request_error",
          null,
          "request_too_large",
          "the request body is over " + MAX_BODY_BYTES + " bytes");
    }
    return b;
  }

  private static JsonNode jsonBody(Context ctx) throws IOException {
    try {
      JsonNode n = ApiRequest.JSON.readTree(body(ctx));
      if (n == null || !n.isObject()) {
        throw ApiError.invalid(null, "the body must be a JSON object");
      }
      return n;
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw ApiError.invalid(null, "the body is not valid JSON");
    }
  }

  private static String field(JsonNode body, String key) {
    JsonNode v = body.get(key);
    if (v == null || !v.isTextual() || v.textValue().isBlank()) {
      throw ApiError.invalid(key, key + " must be a non-empty string");
    }
    return v.textValue();
  }
}
