// The dashboard's one client entry: progressive enhancement of server-rendered pages.
import './style.css';
import { drawCharts } from './chart';

export { csrfFetch } from './csrf';

drawCharts();
