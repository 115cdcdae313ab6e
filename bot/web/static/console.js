(function(){
  var feed=document.getElementById('feed'); if(!feed) return;
  var url=feed.getAttribute('data-src'); var last=feed.innerHTML;
  function scroll(){window.scrollTo(0,document.body.scrollHeight)}
  scroll();
  setInterval(function(){
    fetch(url,{cache:'no-store'}).then(function(r){return r.text()}).then(function(h){
      if(h!==last){last=h;feed.innerHTML=h;scroll()}
    }).catch(function(){});
  },1500);
  var geo=document.getElementById('geo');
  if(geo&&navigator.geolocation){geo.addEventListener('click',function(ev){
    ev.preventDefault();
    navigator.geolocation.getCurrentPosition(function(p){
      var f=document.getElementById('locform');
      f.lat.value=p.coords.latitude;f.lng.value=p.coords.longitude;f.accuracy.value=p.coords.accuracy;f.coord_system.value='wgs84';f.submit();
    },function(e){alert('无法获取位置：'+e.message)},{enableHighAccuracy:true,timeout:10000});
  })}
})();
