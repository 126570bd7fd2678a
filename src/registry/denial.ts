import { parseRobotName } from './access/robots.js';
import type { RegistryAction } from './auth/types.js';

/**
 * The text of a 403 DENIED: which of the asked actions the caller lacks, which it has, and the
 * command that would grant the rest. A push asks for pull and push together; "may not pull and
 * push" sent a pull-only robot looking for a pull problem it did not have.
 *
 * Nothing here depends on whether the project exists or what roles it has, so the hint tells a
 * caller no more than the refusal itself does.
 */

/** The least project role that allows each action (registry/access/policy.ts). */
const ROLE_FOR: Record<RegistryAction, string> = { pull: 'reader', push: 'developer', delete: 'maintainer' };
const GERUND: Record<RegistryAction, string> = { pull: 'pulling', push: 'pushing', delete: 'deleting' };

/**
 * `allows` says whether the caller may do one action alone. It must change nothing (the registry
 * passes its auth hook's `permits`, never `authorize`, which may create a project for a push).
 */
export function deniedMessage(
  principal: { name: string; kind?: string },
  repo: string,
  actions: readonly RegistryAction[],
  allows: (action: RegistryAction) => boolean,
): string {
  const missing = actions.filter((a) => !allows(a));
  // authorize() refused the set, so one is missing; if each passes alone, name them all.
  const lacking = missing.length > 0 ? missing : [...actions];
  const granted = actions.filter((a) => !lacking.includes(a));
  const project = repo.split('/')[0]!;
  const strongest = (['delete', 'push', 'pull'] as const).find((a) => lacking.includes(a))!;
  let text = `${principal.name} may not ${lacking.join(' or ')} ${repo}`;
  if (granted.length > 0) text += ` (it may ${granted.join(' and ')})`;
  if (principal.kind === 'robot') {
    const own = parseRobotName(principal.name)?.project;
    const where = own !== undefined && own !== project ? `a robot works only in its own project (${own})` : `a robot's actions are fixed when it is made`;
    text += `; ${where}: use one made by \`portcullis robot create ${project} NAME --actions ${[...granted, ...lacking].join(',')}\``;
  } else {
    text += `; ${GERUND[strongest]} needs the ${ROLE_FOR[strongest]} role in project ${project}: a project admin grants it with \`portcullis project member ${project} ${principal.name} ${ROLE_FOR[strongest]}\``;
  }
  return text;
}
