/**
 * A policy that changes nothing the scenarios can see: every tool allowed, and every method the fixture
 * serves beyond the gateway's default allow-list forwarded (`forward`, see docs/policy.md). The tasks/*
 * methods are left out because the fixture does not serve them either.
 */
export const TRANSPARENT_POLICY = `version: 1
default: allow
forward: [resources/read, resources/subscribe, resources/unsubscribe, prompts/get, completion/complete, logging/setLevel]
`;
