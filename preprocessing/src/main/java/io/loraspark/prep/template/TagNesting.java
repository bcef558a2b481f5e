package io.loraspark.prep.template;

/**
 * How deep brackets nest inside the tags of a Jinja template, measured before jinjava parses it:
 * its recursive expression parser takes time that grows sharply with depth and overflows the stack
 * on deep input, so {@link SandboxedJinja} refuses deep templates up front. Text outside {@code {{
 * }}} and {@code {% %}} and quoted strings inside them do not count.
 */
final class TagNesting {

  private TagNesting() {}

  /** The largest number of open {@code (}, {@code [} and {@code {} at any point inside a tag. */
  static int maxDepth(String template) {
    int max = 0;
    int depth = 0;
    boolean inTag = false;
    char quote = 0;
    for (int i = 0; i < template.length(); i++) {
      char c = template.charAt(i);
      char next = i + 1 < template.length() ? template.charAt(i + 1) : 0;
      if (!inTag) {
        if (c == '{' && (next == '{' || next == '%')) {
          inTag = true;
          depth = 0;
          i++;
        }
      } else if (quote != 0) {
        if (c == '\\') {
          i++;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if ((c == '}' || c == '%') && next == '}' && depth == 0) {
        inTag = false;
        i++;
      } else if (c == '(' || c == '[' || c == '{') {
        max = Math.max(max, ++depth);
      } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
        depth--;
      }
    }
    return max;
  }
}
