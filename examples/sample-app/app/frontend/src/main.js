import { describe } from './release.js';

document.addEventListener('DOMContentLoaded', () => {
  const p = document.createElement('p');
  p.id = 'front-end';
  p.textContent = describe();
  document.body.appendChild(p);
});
