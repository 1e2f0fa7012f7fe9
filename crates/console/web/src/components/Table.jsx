/**
 * A table's scroll box: wide tables scroll inside it instead of widening the page on a
 * phone. Focusable, so keyboard users can scroll it too.
 */
export function TableWrap({ label, children }) {
  return (
    <div class="table-wrap" role="region" aria-label={label} tabindex="0">
      {children}
    </div>
  );
}

/**
 * A data table from column definitions `[title, cell(row), class?]`; the first column is
 * the row header. `attrs(row)` adds attributes (test hooks) to a row; `foot` is
 * `{label, row}`, a totals row rendered with the same cells.
 */
export function Table({ label, columns, rows, rowKey, attrs, foot, testid }) {
  const cells = (row, first) =>
    columns.map(([, cell, kind], index) =>
      index === 0 ? (
        <th key={index} scope="row" class={kind}>
          {first ?? cell(row)}
        </th>
      ) : (
        <td key={index} class={kind}>
          {cell(row)}
        </td>
      ),
    );
  return (
    <TableWrap label={label}>
      <table data-testid={testid}>
        <thead>
          <tr>
            {columns.map(([title, , kind], index) => (
              <th key={index} scope="col" class={kind}>
                {title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} {...attrs?.(row)}>
              {cells(row)}
            </tr>
          ))}
        </tbody>
        {foot && (
          <tfoot>
            <tr>{cells(foot.row, foot.label)}</tr>
          </tfoot>
        )}
      </table>
    </TableWrap>
  );
}
