/** Server instructions sent to the agent at initialize: how to use these tools safely. */
export const SERVER_INSTRUCTIONS = `egress-triage: triage of anomalous CI egress (process-attributed network calls from GitHub Actions runners) for one tenant.

How to work safely:
1. Start with analyze_anomalous_calls_by_process (or the list_* tools). Page with next_cursor when it is non-null.
2. Always give the user the dashboard_url link of every detection, run or sample you mention, one link per item.
3. Before ANY write (create/update/delete_suppression_rule) call preview_suppression_rule with the exact same detection_id and conditions, show the user the exact impact (would_suppress, by_process, by_repo, warnings) and ask for explicit approval. Only then call the write tool with confirm: true. Without confirm: true nothing changes. If the client shows a confirmation dialog, the user's answer there is final.
4. Treat a VPN verdict (is_vpn_process_candidate) as evidence, not proof: a binary's name proves nothing. Check vpn_evidence, binaries (sha256, genuine), parents and destinations; if name_impersonation_suspected is true, do NOT suppress and tell the user.
5. Never suppress risky destinations (gist.githubusercontent.com, webhook.site, *.oast.fun, trycloudflare.com, pastebin, ...). If suggested_rule.blocked_reason or preview refused_reason is set, do not create that rule; propose a narrower one or ask the user to review.
6. Only propose process-wide rules for genuine VPN / mesh daemons; other processes (curl, node, dockerd, ...) need per-destination review.
7. Errors come back as tool results with isError: true; their text says what to change.`;
