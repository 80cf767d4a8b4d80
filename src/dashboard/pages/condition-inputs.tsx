/**
 * A rule's conditions as labelled text inputs named `c.<key>`, in the order given: the Processes
 * page's preview form and the Rules page's edit form read them back the same way.
 */
export function ConditionInputs({ keys, values }: { keys: readonly string[]; values: Readonly<Record<string, string | undefined>> }) {
  return (
    <>
      {keys.map((k) => (
        <>
          <dt>
            <label for={`cond-${k}`}>{k}</label>
          </dt>
          <dd>
            <input id={`cond-${k}`} name={`c.${k}`} value={values[k] ?? ''} />
          </dd>
        </>
      ))}
    </>
  );
}
