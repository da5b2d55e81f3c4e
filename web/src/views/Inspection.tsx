// Inspection: the image, score map (heat map), mask and overlay side by side with a shared zoom, the
// regions, pseudo-label counts, stage timings and options; reprocess (STATION) and delete (ADMIN) are
// shown only to keys whose role may use them (the server refuses the others anyway).

import { useEffect, useState } from 'preact/hooks';
import { gql, may, subscribe, type Session } from '../api.ts';
import { AuthImage, fmt, Verdict, type InspectionSummary } from '../common.tsx';
import { href } from '../route.ts';

const FIELDS = `id status verdict imageScore defectFraction regionCount width height channels externalId errorCode errorMessage
  emptyReason gateThreshold classifierLoss classifierEpochs totalMs createdAt startedAt finishedAt scoreSource
  pseudoLabels { anomalous nominal } stageMs { stage ms } options { key value } metrics { precision recall f1 iou }
  imageUrl scoreMapUrl maskUrl overlayUrl product { id name options { key value } }
  regions { index area bbox { x y width height } centroid { x y } meanScore maxScore }`;

interface Detail extends InspectionSummary {
  width: number;
  height: number;
  channels: number;
  errorCode: string | null;
  errorMessage: string | null;
  emptyReason: string | null;
  gateThreshold: number | null;
  classifierLoss: number | null;
  classifierEpochs: number | null;
  totalMs: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  scoreSource: string;
  pseudoLabels: { anomalous: number; nominal: number } | null;
  stageMs: { stage: string; ms: number }[];
  options: { key: string; value: string }[];
  metrics: { precision: number; recall: number; f1: number; iou: number } | null;
  imageUrl: string;
  scoreMapUrl: string | null;
  maskUrl: string | null;
  overlayUrl: string | null;
  product: { id: string; name: string; options: { key: string; value: string }[] };
  regions: { index: number; area: number; bbox: { x: number; y: number; width: number; height: number }; centroid: { x: number; y: number }; meanScore: number; maxScore: number }[];
}

/** "key=value" lines as option overrides; a malformed line is named. */
function parseOptions(text: string): { key: string; value: string }[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line, k) => {
      const at = line.indexOf('=');
      if (at <= 0) throw new Error(`line ${k + 1} ("${line}") is not key=value`);
      return { key: line.slice(0, at).trim(), value: line.slice(at + 1).trim() };
    });
}

export function Inspection(props: { session: Session; id: string }) {
  const { session, id } = props;
  const [item, setItem] = useState<Detail | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [zoom, setZoom] = useState(1);
  const [overrides, setOverrides] = useState('');
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setItem(undefined);
    gql<{ inspection: Detail | null }>(session.key, `query($id: ID!) { inspection(id: $id) { ${FIELDS} } }`, { id }).then(
      (d) => live && setItem(d.inspection),
      (e: Error) => live && setError(e.message),
    );
    // Follows a queued or running inspection (and a reprocess) until it completes.
    const stop = subscribe<{ inspectionUpdated: Detail }>(
      session.key,
      `subscription($id: ID!) { inspectionUpdated(id: $id) { ${FIELDS} } }`,
      { id },
      (d) => live && setItem(d.inspectionUpdated),
      () => undefined,
    );
    return () => {
      live = false;
      stop();
    };
  }, [session.key, id]);

  if (error) return <p class="error">{error}</p>;
  if (item === undefined) return <p>Loading…</p>;
  if (item === null) return <p class="error">No inspection with the id {id} (or not one of your key's products).</p>;

  const reprocess = async () => {
    setNotice(null);
    try {
      const options = overrides.trim() ? parseOptions(overrides) : null;
      const d = await gql(session.key, `mutation($id: ID!, $o: [OptionInput!]) { reprocessInspection(id: $id, options: $o) { __typename ... on Error { code message } } }`, { id, o: options });
      const r = d.reprocessInspection;
      setNotice(r.__typename === 'ReprocessInspectionSuccess' ? 'Queued for reprocessing.' : `${r.code}: ${r.message}`);
    } catch (e) {
      setNotice((e as Error).message);
    }
  };
  const remove = async () => {
    if (!confirm('Delete this inspection with its files and regions?')) return;
    try {
      const d = await gql(session.key, `mutation($id: ID!) { deleteInspection(id: $id) { __typename ... on Error { code message } } }`, { id });
      const r = d.deleteInspection;
      if (r.__typename === 'DeletedInspection') location.hash = href('history', { product: item.product.id });
      else setNotice(`${r.code}: ${r.message}`);
    } catch (e) {
      setNotice((e as Error).message);
    }
  };

  const images: [string, string | null][] = [
    ['Image', item.imageUrl],
    ['Score map', item.scoreMapUrl],
    ['Mask', item.maskUrl],
    ['Overlay', item.overlayUrl],
  ];
  return (
    <section>
      <h2>
        {item.product.name} · <Verdict verdict={item.verdict} status={item.status} /> {item.externalId && <small>{item.externalId}</small>}
      </h2>
      {item.status === 'FAILED' && (
        <p class="error">
          {item.errorCode}: {item.errorMessage}
        </p>
      )}
      <div class="toolbar">
        <label>
          Zoom <input type="range" min="0.5" max="4" step="0.25" value={zoom} onInput={(e) => setZoom(Number((e.target as HTMLInputElement).value))} /> {zoom}×
        </label>
        <span class="muted">
          {item.width} × {item.height} px, {item.channels} channel{item.channels > 1 ? 's' : ''}
        </span>
      </div>
      <div class="images" style={{ '--zoom': zoom }}>
        {images.map(([label, url]) => (
          <figure key={label}>
            <div class="frame">{url ? <AuthImage session={session} src={url} alt={label} testid={`image-${label.toLowerCase().replace(' ', '-')}`} /> : <span class="muted">not available</span>}</div>
            <figcaption>{label}</figcaption>
          </figure>
        ))}
      </div>
      <div class="columns">
        <div>
          <h3>Result</h3>
          <dl class="facts">
            <dt>image score</dt>
            <dd>{fmt.score(item.imageScore)}</dd>
            <dt>gate threshold</dt>
            <dd>{fmt.score(item.gateThreshold)}</dd>
            <dt>defect area</dt>
            <dd>{fmt.percent(item.defectFraction)}</dd>
            <dt>score source</dt>
            <dd>{item.scoreSource}</dd>
            {item.emptyReason && (
              <>
                <dt>empty because</dt>
                <dd>{item.emptyReason}</dd>
              </>
            )}
            <dt>pseudo-labels</dt>
            <dd data-testid="pseudo-labels">{item.pseudoLabels ? `${item.pseudoLabels.anomalous} anomalous, ${item.pseudoLabels.nominal} nominal` : '–'}</dd>
            <dt>classifier</dt>
            <dd>{item.classifierEpochs != null ? `${item.classifierEpochs} epochs, loss ${fmt.score(item.classifierLoss)}` : '–'}</dd>
            {item.metrics && (
              <>
                <dt>vs ground truth</dt>
                <dd>
                  F1 {fmt.score(item.metrics.f1)}, IoU {fmt.score(item.metrics.iou)}
                </dd>
              </>
            )}
            <dt>created</dt>
            <dd>{fmt.time(item.createdAt)}</dd>
            <dt>finished</dt>
            <dd>{fmt.time(item.finishedAt)}</dd>
          </dl>
        </div>
        <div>
          <h3>Stages</h3>
          <table data-testid="stages">
            <tbody>
              {item.stageMs.map((s) => (
                <tr key={s.stage}>
                  <td>{s.stage}</td>
                  <td class="num">{fmt.ms(s.ms)}</td>
                </tr>
              ))}
              <tr>
                <th>total</th>
                <th class="num">{fmt.ms(item.totalMs)}</th>
              </tr>
            </tbody>
          </table>
        </div>
        <div>
          <h3>Options</h3>
          <table data-testid="options">
            <tbody>
              {item.product.options.map((o) => (
                <tr key={`p-${o.key}`}>
                  <td>{o.key}</td>
                  <td>{o.value}</td>
                  <td class="muted">product</td>
                </tr>
              ))}
              {item.options.map((o) => (
                <tr key={`i-${o.key}`}>
                  <td>{o.key}</td>
                  <td>{o.value}</td>
                  <td class="muted">inspection</td>
                </tr>
              ))}
              {!item.product.options.length && !item.options.length && (
                <tr>
                  <td class="muted">defaults</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </div>
      <h3>Regions ({item.regions.length})</h3>
      <table data-testid="regions">
        <thead>
          <tr>
            <th class="num">#</th>
            <th class="num">Area (px)</th>
            <th>Box (x, y, w × h)</th>
            <th>Centroid</th>
            <th class="num">Mean score</th>
            <th class="num">Max score</th>
          </tr>
        </thead>
        <tbody>
          {item.regions.map((r) => (
            <tr key={r.index}>
              <td class="num">{r.index}</td>
              <td class="num">{r.area}</td>
              <td>
                {r.bbox.x}, {r.bbox.y}, {r.bbox.width} × {r.bbox.height}
              </td>
              <td>
                {r.centroid.x.toFixed(1)}, {r.centroid.y.toFixed(1)}
              </td>
              <td class="num">{fmt.score(r.meanScore)}</td>
              <td class="num">{fmt.score(r.maxScore)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {(may(session, 'STATION') || may(session, 'ADMIN')) && (
        <div class="actions">
          {may(session, 'STATION') && (item.status === 'SUCCEEDED' || item.status === 'FAILED') && (
            <div>
              <label>
                Option overrides (key=value, one a line)
                <textarea name="overrides" rows={3} value={overrides} onInput={(e) => setOverrides((e.target as HTMLTextAreaElement).value)} placeholder="classifier.epochs=30" />
              </label>
              <button data-testid="reprocess" onClick={reprocess}>
                Reprocess
              </button>
            </div>
          )}
          {may(session, 'ADMIN') && (
            <button data-testid="delete" class="danger" onClick={remove}>
              Delete
            </button>
          )}
        </div>
      )}
      {notice && <p class="notice">{notice}</p>}
    </section>
  );
}
