/**
 * Shapes of common credentials, for secret scanning. Each is anchored on a distinctive start so
 * that a scanner holding back `SCAN_OVERLAP` bytes between chunks finds every one that crosses a
 * chunk boundary. Shared by the egress proxy and (later) the git gate.
 */
export interface SecretPattern {
  name: string;
  description: string;
  regex: RegExp;
}

export const SECRET_PATTERNS: readonly SecretPattern[] = [
  {
    name: "anthropic-key",
    description: "an Anthropic API key or OAuth token",
    regex: /sk-ant-(?:api|admin|oat|ort|sid)\d{2}-[A-Za-z0-9_-]{20,}/,
  },
  {
    name: "openai-key",
    description: "an OpenAI API key",
    regex:
      /sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}|sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}/,
  },
  {
    name: "aws-access-key-id",
    description: "an AWS access key ID",
    regex: /(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])/,
  },
  {
    name: "aws-secret-key",
    description: "an AWS secret access key",
    regex: /aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])/i,
  },
  {
    name: "github-token",
    description: "a GitHub token",
    regex: /(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,}/,
  },
  { name: "gitlab-token", description: "a GitLab token", regex: /glpat-[A-Za-z0-9_-]{20,}/ },
  {
    name: "slack-token",
    description: "a Slack token or webhook",
    regex:
      /xox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]{16,}/,
  },
  {
    name: "stripe-key",
    description: "a Stripe live key",
    regex: /(?:sk|rk)_live_[A-Za-z0-9]{20,}/,
  },
  {
    name: "google-api-key",
    description: "a Google API key",
    regex: /AIza[0-9A-Za-z_-]{35}/,
  },
  { name: "npm-token", description: "an npm token", regex: /npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/ },
  {
    name: "private-key",
    description: "a PEM private key",
    regex: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/,
  },
  {
    name: "jwt",
    description: "a JSON Web Token",
    regex: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/,
  },
];

/** Bytes a streaming scanner keeps between chunks: longer than any match it must see whole. */
export const SCAN_OVERLAP = 512;
