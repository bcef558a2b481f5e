package io.loraspark.prep.template;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.loader.ResourceNotFoundException;
import java.util.Map;

/**
 * Jinja rendering for untrusted chat templates (jinjava), configured like transformers' {@code
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)} plus hard limits:
 *
 * <ul>
 *   <li>no file or classpath access: {@code include}, {@code import}, {@code from} and {@code
 *       extends} fail, whatever they name;
 *   <li>no recursive macros, render depth {@value #MAX_RENDER_DEPTH}, {@code range} at most {@value
 *       #RANGE_LIMIT} items, output and strings at most {@link #MAX_OUTPUT_CHARS} chars;
 *   <li>a wall-clock budget per render ({@link #RENDER_MILLIS}, property {@code
 *       prep.template.renderMillis}) checked before every template node, so nested loops cannot
 *       hang a task;
 *   <li>{@code raise_exception(message)} (used by Hugging Face templates to refuse a conversation)
 *       fails the render with that message;
 *   <li>brackets inside tags nest at most {@value #MAX_NESTING} deep (jinjava's expression parser
 *       is recursive and slows down sharply with depth: 3,200 nested parentheses took 35 s, then
 *       overflowed the stack), and a stack overflow anywhere in parsing or rendering is a failure
 *       of this template, not of the task.
 * </ul>
 *
 * Every failure is one line.
 *
 * <p>Thread-safe: per-render state is thread-local.
 */
public final class SandboxedJinja {

  /** Largest rendered output, chars. */
  public static final long MAX_OUTPUT_CHARS = Long.getLong("prep.template.maxOutputChars", 4 << 20);

  /** Wall-clock budget of one render, ms. */
  public static final long RENDER_MILLIS = Long.getLong("prep.template.renderMillis", 2000);

  static final int MAX_RENDER_DEPTH = 10;
  static final int RANGE_LIMIT = 10_000;
  static final int MAX_NESTING = 64;
  private static final int MAX_NAME_CHARS = 200;

  private static final ThreadLocal<RenderState> STATE = new ThreadLocal<>();

  private final Jinjava jinjava;

  /** Why a render failed, as one line. */
  public static final class RenderFailure extends Exception {
    private static final long serialVersionUID = 1L;

    RenderFailure(String message) {
      super(message, null, false, false);
    }
  }

  /** Per-render limits and what went wrong, for messages. */
  private static final class RenderState {
    final long deadline = System.nanoTime() + RENDER_MILLIS * 1_000_000L;
    String raised;
    String resource;
    boolean timedOut;
  }

  /** Creates the engine; cheap enough per executor, not per row. */
  public SandboxedJinja() {
    JinjavaConfig config =
        JinjavaConfig.newBuilder()
            .withTrimBlocks(true)
            .withLstripBlocks(true)
            .withMaxRenderDepth(MAX_RENDER_DEPTH)
            .withEnableRecursiveMacroCalls(false)
            .withRangeLimit(RANGE_LIMIT)
            .withMaxOutputSize(MAX_OUTPUT_CHARS)
            .withMaxStringLength(MAX_OUTPUT_CHARS)
            .withNodePreProcessor((node, interpreter) -> checkBudget())
            .build();
    jinjava = new Jinjava(config);
    jinjava.setResourceLocator(
        (name, encoding, interpreter) -> {
          RenderState s = STATE.get();
          if (s != null) {
            s.resource = name;
          }
          throw new ResourceNotFoundException("templates may not load " + name);
        });
    jinjava
        .getGlobalContext()
        .registerFunction(
            new ELFunctionDefinition(
                "", "raise_exception", SandboxedJinja.class, "raiseException", String.class));
  }

  /**
   * Renders {@code template} with {@code context}.
   *
   * @throws RenderFailure with a one-line reason if the template raised, exceeded a limit, tried to
   *     load a file or has an error
   */
  public String render(String template, Map<String, Object> context) throws RenderFailure {
    int depth = TagNesting.maxDepth(template);
    if (depth > MAX_NESTING) {
      throw new RenderFailure(
          "brackets inside a tag nest " + depth + " deep; at most " + MAX_NESTING + " are allowed");
    }
    RenderState state = new RenderState();
    STATE.set(state);
    RenderResult result;
    try {
      result = jinjava.renderForResult(template, context);
    } catch (RuntimeException e) {
      throw new RenderFailure(failure(state, e.toString()));
    } catch (StackOverflowError e) {
      throw new RenderFailure(
          "the template nests too deeply (stack overflow while parsing or rendering it)");
    } finally {
      STATE.remove();
    }
    for (TemplateError e : result.getErrors()) {
      if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
        String at = e.getLineno() > 0 ? " (template line " + e.getLineno() + ")" : "";
        throw new RenderFailure(failure(state, e.getMessage() + at));
      }
    }
    return result.getOutput();
  }

  private static String failure(RenderState state, String detail) {
    if (state.raised != null) {
      return "the template raised an exception: " + oneLine(state.raised);
    }
    if (state.timedOut) {
      return "rendering took longer than " + RENDER_MILLIS + " ms (a loop that does not end?)";
    }
    if (state.resource != null) {
      String name = oneLine(state.resource);
      return "the template tried to load \""
          + (name.length() > MAX_NAME_CHARS ? name.substring(0, MAX_NAME_CHARS) + "..." : name)
          + "\"; chat templates may not include, import or extend other files";
    }
    return oneLine(detail);
  }

  private static void checkBudget() {
    RenderState s = STATE.get();
    if (s != null && System.nanoTime() > s.deadline) {
      s.timedOut = true;
      throw new IllegalStateException("render budget exceeded");
    }
  }

  /**
   * The {@code raise_exception} template function: fails the render with {@code message}.
   *
   * @param message the template's message
   * @return never returns
   */
  public static String raiseException(String message) {
    RenderState s = STATE.get();
    if (s != null) {
      s.raised = String.valueOf(message);
    }
    throw new IllegalStateException("raise_exception: " + message);
  }

  static String oneLine(String s) {
    return s == null ? "" : s.strip().replaceAll("\\s*\\R\\s*", " ");
  }
}
